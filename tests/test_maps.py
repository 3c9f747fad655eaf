"""Map specs: schema, rows expanded into regression specs, region checks, the CLI end to end,
and every executor (in-process, worker processes, Ray) giving the same numbers."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import all_losses, write_spec
from overparam.cli import app
from overparam.errors import OverparamError
from overparam.kinds.maps.cells import Cell, RowResult, evaluate_region, map_cells
from overparam.kinds.maps.spec import MapSpec, RegionCheck
from overparam.results import ModelResult, Results
from overparam.specload import load_spec

runner = CliRunner()
LOCATED = re.compile(r"^.+:\d+:\d+: .+")


def small_map(**overrides: object) -> dict:
    """A p × depth map on synthetic data that trains in a few seconds."""
    spec = {
        "id": "tiny-map",
        "experiment": "map",
        "title": "Tiny map",
        "claim": "A claim for tests.",
        "paper": {"section": "test"},
        "verdict": {"status": "by checks"},
        "data": {"kind": "synthetic", "n": 64, "d": 6, "condition": 10.0, "seed": 0},
        "loss": {"kind": "lp", "p": 4},
        "train": {"steps": 300, "record_every": 50, "init": {"kind": "normal", "std": 0.1}},
        "width": 4,
        "depths": [2, 3],
        "rows": {"axis": "p", "levels": [{"value": 2, "lr": [0.01, 0.03]}, {"value": 4}]},
        "tune": {"lr": [0.003, 0.01]},
        "seeds": [0, 1],
        "checks": [{"kind": "region", "says": "finite", "above": 1e-9}],
    }
    spec.update(overrides)
    return spec


def loaded(tmp_path: Path, **overrides: object) -> MapSpec:
    spec = load_spec(write_spec(tmp_path, small_map(**overrides)))
    assert isinstance(spec, MapSpec)
    return spec


def errors_of(tmp_path: Path, **overrides: object) -> list[str]:
    with pytest.raises(OverparamError) as caught:
        load_spec(write_spec(tmp_path, small_map(**overrides)))
    assert all(LOCATED.match(line) for line in caught.value.lines), caught.value.lines
    return caught.value.lines


def test_each_row_becomes_a_regression_spec_with_depth_1_and_the_maps_depths(tmp_path: Path) -> None:
    spec = loaded(tmp_path)
    rows = [spec.row_spec(level) for level in spec.rows.levels]
    assert [row.loss.p for row in rows] == [2.0, 4.0]
    assert [m.depth for m in rows[0].models] == [1, 2, 3] and all(m.width == 4 for m in rows[0].models)
    assert rows[0].tune.lr == [0.01, 0.03] and rows[1].tune.lr == [0.003, 0.01]  # a row's own grid wins


@pytest.mark.parametrize(
    ("rows", "attribute", "expected"),
    [
        ({"axis": "init_std", "levels": [{"value": 0.5}]}, lambda r: r.train.init.std, 0.5),
        ({"axis": "width", "levels": [{"value": 7}]}, lambda r: r.models[1].width, 7),
        ({"axis": "data", "levels": [{"value": {"kind": "synthetic", "n": 30, "d": 3}}]}, lambda r: r.data.n, 30),
    ],
)
def test_every_axis_sets_its_part_of_the_row(tmp_path: Path, rows: dict, attribute, expected) -> None:  # noqa: ANN001
    spec = loaded(tmp_path, rows=rows)
    assert attribute(spec.row_spec(spec.rows.levels[0])) == expected


BAD_MAPS = [  # (overrides of small_map, a fragment of the message); tests/test_schema.py reads them too
    ({"checks": [{"kind": "region", "where": {"q": {"at_least": 1}}, "above": 1}]}, "no axis 'q'; this map's axes are depth and p"),
    ({"checks": [{"kind": "region", "where": {"p": {"at_least": 9}}, "above": 1}]}, "the region holds no cell of this map"),
    ({"checks": [{"kind": "region", "where": {}}]}, "a region check needs above or below"),
    ({"rows": {"axis": "data", "levels": [{"value": 3}]}}, "the data axis takes a data entry"),
    ({"rows": {"axis": "p", "levels": [{"value": 1}]}}, "p must lie in [2, 64]"),
    ({"rows": {"axis": "width", "levels": [{"value": 2.5}]}}, "a width is a whole number"),
    ({"rows": {"axis": "p", "levels": [{"value": 4}, {"value": 4.0}]}}, "give them distinct `label`s"),
    ({"rows": {"axis": "p", "levels": [{"value": 4, "lr": [0.1, 0.1]}]}}, "levels[0].lr: the grid repeats a value"),
    ({"tune": {"pick": "lowest_final_gap"}}, "give it `lr: [...]` or set tune.lr"),
    ({"depths": [1, 2]}, "depths[0]"),
    ({"depths": [2, 2]}, "depths repeat a value"),
    ({"train": {"horizon": 1.0, "records": 10}}, "give train.steps, not horizon"),
    (
        {"rows": {"axis": "init_std", "levels": [{"value": 0.1}]}, "train": {"steps": 100, "init": {"kind": "identity"}}},
        "scales a normal init",
    ),
]


@pytest.mark.parametrize(("overrides", "fragment"), BAD_MAPS)
def test_bad_maps_give_located_lines(tmp_path: Path, overrides: dict, fragment: str) -> None:
    assert any(fragment in line for line in errors_of(tmp_path, **overrides))


def _result(name: str, finals: list[float], lr: float | None = 0.1) -> ModelResult:
    losses = torch.tensor([[1.0, f] for f in finals], dtype=torch.float64)
    return ModelResult(name, lr, [0, 1], torch.tensor([0.0, 10.0]), losses, 0.0, why_none="" if lr else "every lr of the grid diverged")


def _cells(tmp_path: Path, deep_finals: list[float], deep_lr: float | None = 0.1) -> tuple[MapSpec, dict[tuple[str, int], Cell]]:
    spec = loaded(tmp_path, rows={"axis": "p", "levels": [{"value": 4}]}, depths=[2])
    picked = {"depth 1": _result("depth 1", [0.4, 0.2]), "depth 2": _result("depth 2", deep_finals, deep_lr)}
    return spec, map_cells(spec, [RowResult("p = 4", Results(picked, {}))])


def test_a_cells_speedup_is_depth_1s_final_gap_over_depth_ns_seed_by_seed(tmp_path: Path) -> None:
    _, cells = _cells(tmp_path, [0.1, 0.4])
    assert cells["p = 4", 2].speedups == pytest.approx([4.0, 0.5])


def test_two_runs_that_converged_to_rounding_are_equally_fast(tmp_path: Path) -> None:
    spec = loaded(tmp_path, rows={"axis": "p", "levels": [{"value": 4}]}, depths=[2])
    picked = {"depth 1": _result("depth 1", [1e-17, 0.2]), "depth 2": _result("depth 2", [-1e-17, 1e-20])}
    cells = map_cells(spec, [RowResult("p = 4", Results(picked, {}))])
    assert cells["p = 4", 2].speedups == pytest.approx([1.0, 0.2 / 1e-12])


@pytest.mark.parametrize(
    ("check", "passed"),
    [
        ({"above": 0.4}, True),
        ({"above": 1.0}, False),  # seed 1 is slower with depth
        ({"above": 1.0, "seeds": "median"}, True),  # median of 4 and 0.5
        ({"below": 5.0, "where": {"depth": {"in": [2]}}}, True),
        ({"below": 3.0}, False),
    ],
)
def test_region_checks_pass_and_fail_on_the_cells_they_cover(tmp_path: Path, check: dict, passed: bool) -> None:
    spec, cells = _cells(tmp_path, [0.1, 0.4])
    result = evaluate_region(RegionCheck(kind="region", **check), spec, cells)
    assert result.passed is passed, result.evidence


def test_a_region_with_an_unusable_cell_fails_with_the_reason(tmp_path: Path) -> None:
    spec, cells = _cells(tmp_path, [0.1, 0.4], deep_lr=None)
    result = evaluate_region(RegionCheck(kind="region", above=0.1), spec, cells)
    assert not result.passed and "every lr of the grid diverged" in result.evidence


def _invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def test_a_map_runs_end_to_end_with_its_heatmap_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    path = write_spec(tmp_path, small_map())
    store, reports = tmp_path / "s.sqlite", tmp_path / "reports"
    first = _invoke("run", path, "--store", store, "--reports", reports)
    assert first.exit_code == 0, first.output
    text = (reports / "tiny-map.md").read_text()
    assert "## Speed-up over depth 1 per cell" in text and "| p = 4 |" in text
    assert (reports / "figures" / "tiny-map.png").read_bytes()[:4] == b"\x89PNG"
    again = _invoke("run", path, "--store", store, "--reports", reports)
    assert "0 runs trained" in again.output


def test_a_data_map_reports_each_rows_optimum_and_starting_gap(tmp_path: Path) -> None:
    """For a data axis, the report gives each row's exact L*, L(0) − L*, ‖w*‖ and the target's
    kurtosis, computed from that row's data."""
    from overparam.data.synthetic import SyntheticData, load_synthetic
    from overparam.kinds.maps.report import data_facts
    from overparam.losses import lp_optimum

    rows = {"axis": "data", "levels": [{"value": {"kind": "synthetic", "n": 64, "d": 6, "seed": s}, "label": f"seed {s}"} for s in (0, 1)]}
    path = write_spec(tmp_path, small_map(rows=rows, depths=[2]))
    reports = tmp_path / "reports"
    result = _invoke("run", path, "--store", tmp_path / "s.sqlite", "--reports", reports)
    assert result.exit_code == 0, result.output
    data = load_synthetic(SyntheticData(kind="synthetic", n=64, d=6, seed=1))
    facts = data_facts(data, 4.0, lp_optimum(data.X, data.y, 4.0))
    assert facts.kurtosis == pytest.approx(float((data.y**4).mean() / (data.y**2).mean() ** 2))
    assert facts.start_gap == pytest.approx(float((data.y.abs() ** 4).mean()) - facts.loss_star)
    row = next(line for line in (reports / "tiny-map.md").read_text().splitlines() if line.startswith("| seed 1 | 64 |"))
    assert f"| {facts.loss_star:.4g} | {facts.start_gap:.4g} | {facts.w_star_norm:.4g} |" in row


def test_a_map_whose_region_claim_is_false_exits_1(tmp_path: Path) -> None:
    path = write_spec(tmp_path, small_map(checks=[{"kind": "region", "above": 1e9}]))
    result = _invoke("run", path, "--store", tmp_path / "s.sqlite", "--reports", tmp_path / "r")
    assert result.exit_code == 1 and "cell(s) break it" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("backend", [["--jobs", "2"], ["--executor", "ray", "--jobs", "2"]], ids=["processes", "ray"])
def test_every_executor_gives_the_in_process_numbers(tmp_path: Path, backend: list[str]) -> None:
    if "ray" in backend:
        pytest.importorskip("ray", reason="the Ray backend is tested where `overparam[ray]` is installed (CI installs it)")
    raw = copy.deepcopy(small_map())
    raw["data"] = {
        "kind": "uci_gas",
        "gas_class": 1,
        "standardize": True,
        "path": str(Path(__file__).resolve().parents[2] / "shared/data/uci-gas-drift"),
    }
    raw["train"]["init"]["std"] = 0.01
    raw["rows"] = {"axis": "p", "levels": [{"value": 2, "lr": [1e-3, 2e-3]}, {"value": 4, "lr": [1e-4, 2e-4]}]}
    path = write_spec(tmp_path, raw)
    local, remote = tmp_path / "local.sqlite", tmp_path / "remote.sqlite"
    assert _invoke("run", path, "--store", local, "--reports", tmp_path / "r1").exit_code == 0
    try:
        other = _invoke("run", path, "--store", remote, "--reports", tmp_path / "r2", *backend)
    finally:
        if "ray" in backend:
            import ray

            ray.shutdown()  # the local Ray instance this test started
    assert other.exit_code == 0, other.output
    assert all_losses(remote) == all_losses(local)


def test_address_without_ray_is_one_clear_line(tmp_path: Path) -> None:
    result = _invoke("run", write_spec(tmp_path, small_map()), "--address", "ray://x:1", "--store", tmp_path / "s")
    assert result.exit_code == 2 and "add --executor ray" in result.output
