"""Every shipped spec, and the README's example, runs end to end through the CLI at a smoke
budget (a few dozen steps, one seed): a spec that validates but crashes is caught here, not in
an hour-long `verify-all`. The checks may fail at this budget; the run must not."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from conftest import MNIST_DIR, REPO, UCI_DIR, needs_mnist, needs_uci, write_spec
from overparam.cli import app

SPECS = sorted((REPO / "specs").glob("*.yaml"))
pytestmark = pytest.mark.slow


def at_smoke_budget(raw: dict[str, Any]) -> dict[str, Any]:
    """The spec with every code path of its runs kept and almost no work: 40 steps (4 for the
    convnet), the first seed, the first case of a probe; checks read the end of the run."""
    spec = copy.deepcopy(raw)
    spec.pop("profiles", None)
    spec["seeds"] = spec["seeds"][:1]
    kind = spec.get("experiment", "regression")
    if kind in ("regression", "map"):
        train = {key: value for key, value in spec["train"].items() if key not in ("horizon", "records")}
        spec["train"] = {**train, "steps": 40, "record_every": 20}
        spec["checks"] = [{key: value for key, value in check.items() if key != "at_step"} for check in spec["checks"]]
    elif kind == "convnet":
        spec["train"] = {**spec["train"], "steps": 4, "record_every": 2}
    elif "cases" in spec.get("probe", {}):
        spec["probe"]["cases"] = spec["probe"]["cases"][:1]
    return spec


def run_at_smoke_budget(tmp_path: Path, raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OVERPARAM_DATA", str(UCI_DIR))
    monkeypatch.setenv("OVERPARAM_MNIST", str(MNIST_DIR))
    path = write_spec(tmp_path, at_smoke_budget(raw), name=f"{raw['id']}.yaml")
    args = ["run", str(path), "--store", str(tmp_path / "store.sqlite"), "--reports", str(tmp_path / "reports")]
    return CliRunner().invoke(app, args)


@needs_uci
@needs_mnist
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_runs_end_to_end(tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = yaml.safe_load(path.read_text())
    result = run_at_smoke_budget(tmp_path, raw, monkeypatch)
    assert isinstance(result.exception, (SystemExit, type(None))), result.output  # a crash is exit 1 with an exception
    assert result.exit_code in (0, 1), result.output
    assert (tmp_path / "reports" / f"{raw['id']}.md").is_file(), result.output


@needs_uci
def test_the_readmes_spec_example_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = (REPO / "README.md").read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(example)
    result = run_at_smoke_budget(tmp_path, raw, monkeypatch)
    assert isinstance(result.exception, (SystemExit, type(None))), result.output
    assert result.exit_code in (0, 1), result.output
    assert (tmp_path / "reports" / f"{raw['id']}.md").is_file(), result.output
