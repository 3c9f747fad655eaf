"""Input a careless or hostile user gives: names that are paths, two specs with one id, values the
maths cannot take, special files, edits during a run. Each is refused before anything trains
with one located line and exit 2, or never changes what a run reports."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import all_losses, small_spec, write_spec
from overparam import pipeline
from overparam.cli import app
from overparam.errors import EnvironmentFault
from overparam.report import write_index
from overparam.specload import load_spec


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def run_args(tmp_path: Path) -> list[object]:
    return ["--store", tmp_path / "store.sqlite", "--reports", tmp_path / "reports"]


@pytest.mark.parametrize("name", ["x/../../PWNED", "../up", "a" * 300, "Paper", "with space", ".hidden"])
def test_a_profile_name_is_a_name_never_a_path(tmp_path: Path, name: str) -> None:
    spec = write_spec(tmp_path, small_spec(profiles={name: {"train": {"steps": 200}}}))
    result = invoke("validate", spec)
    assert result.exit_code == 2 and "profiles" in one_line(result), result.output
    escaped = invoke("run", spec, "--profile", name, *run_args(tmp_path))
    assert escaped.exit_code == 2 and "Traceback" not in escaped.output
    assert not list(tmp_path.parent.rglob("PWNED*")) and not (tmp_path / "store.sqlite").exists()


@pytest.mark.parametrize("name", ["line\nbreak", "a | b", "tick`s", "tab\there", "x" * 61, ""])
def test_a_model_name_that_would_break_a_table_is_refused(tmp_path: Path, name: str) -> None:
    spec = small_spec()
    spec["models"][0]["name"] = name
    spec["checks"][0]["model"] = name
    result = invoke("validate", write_spec(tmp_path, spec))
    assert result.exit_code == 2 and "models[0].name" in result.output and "Traceback" not in result.output, result.output


def test_an_id_is_a_name_never_a_path(tmp_path: Path) -> None:
    result = invoke("validate", write_spec(tmp_path, small_spec(id="../../etc/x")))
    assert result.exit_code == 2 and ": id:" in one_line(result)


def test_two_specs_with_one_id_are_refused_naming_both(tmp_path: Path) -> None:
    a = write_spec(tmp_path, small_spec(), "a.yaml")
    b = write_spec(tmp_path, small_spec(title="Another"), "b.yaml")
    result = invoke("run", a, b, *run_args(tmp_path))
    assert result.exit_code == 2 and str(a) in one_line(result) and str(b) in one_line(result)
    assert not (tmp_path / "reports").exists()
    folder = invoke("verify-all", "--specs", tmp_path, *run_args(tmp_path))
    assert folder.exit_code == 2 and "'tiny'" in one_line(folder)


def test_a_spec_without_a_claim_check_states_no_reproduction(tmp_path: Path) -> None:
    observation = [{"kind": "bound", "metric": "final_gap", "model": "shallow", "hi": 1e-30, "role": "observation"}]
    stated = invoke("validate", write_spec(tmp_path, small_spec(checks=observation)))
    assert stated.exit_code == 2 and "verdict.status: no check has role `claim`" in one_line(stated)
    holding = [{**observation[0], "hi": 100.0}]
    spec = write_spec(tmp_path, small_spec(checks=holding, verdict={"status": "not tested", "observed": "Only observed."}))
    result = invoke("run", spec, *run_args(tmp_path))
    assert result.exit_code == 0, result.output
    report = (tmp_path / "reports" / "tiny.md").read_text()
    assert "**Observations only**" in report and "**Reproduced**" not in report


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"seed": 2**70}, "data.seed"),
        ({"seed": -1}, "data.seed"),
        ({"noise": 1e80}, "data.noise"),
    ],
)
def test_values_the_maths_cannot_take_are_refused_by_validate(tmp_path: Path, data: dict, key: str) -> None:
    spec = small_spec()
    spec["data"].update(data)
    result = invoke("validate", write_spec(tmp_path, spec))
    assert result.exit_code == 2 and f": {key}:" in one_line(result), result.output


def test_deep_nesting_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("id: x\nv: " + "[" * 1000 + "]" * 1000 + "\n")
    result = invoke("validate", path)
    assert result.exit_code == 2 and "nested more than" in one_line(result) and f"{path}:2:" in one_line(result)


def test_a_spec_beyond_the_machines_memory_is_refused_before_training(tmp_path: Path) -> None:
    spec = small_spec(models=[{"name": "huge", "kind": "linear_net", "depth": 64, "width": 4096}])
    spec["checks"][0]["model"] = "huge"
    path = write_spec(tmp_path, spec)
    assert invoke("validate", path).exit_code == 0  # inside the schema's limits
    result = invoke("run", path, *run_args(tmp_path))
    assert result.exit_code == 2 and "GiB" in result.output and "Traceback" not in result.output, result.output
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_spec_that_is_not_a_regular_file_is_refused_without_reading(tmp_path: Path, special: str) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "spec.yaml"
        os.mkfifo(path)
    result = invoke("validate", path)  # would hang (or fill memory) if read
    assert result.exit_code == 2 and "not a regular file" in one_line(result)


def test_a_data_batch_that_is_a_fifo_is_refused_without_reading(tmp_path: Path, uci_dir: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for batch in sorted(uci_dir.glob("batch*.dat"))[:2]:
        shutil.copyfile(batch, data / batch.name)
    os.mkfifo(data / "batch9.dat")
    spec = small_spec(data={"kind": "uci_gas", "path": str(data)})
    result = invoke("run", write_spec(tmp_path, spec), *run_args(tmp_path))
    assert result.exit_code == 2 and "batch9.dat: not a regular file" in result.output, result.output


@pytest.mark.parametrize(("flag", "value"), [("--checkpoint-every", "0"), ("--device", "cuda:abc")])
def test_flags_that_cannot_work_are_refused(tmp_path: Path, flag: str, value: str) -> None:
    result = invoke("run", write_spec(tmp_path, small_spec()), flag, value, *run_args(tmp_path))
    assert result.exit_code == 2 and (value if flag == "--device" else flag) in result.output, result.output
    assert "🔤" not in result.output


def test_a_spec_edited_during_its_run_does_not_change_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = small_spec(checks=[{"kind": "bound", "metric": "final_gap", "model": "shallow", "hi": 1e-30}])
    path = write_spec(tmp_path, spec)
    real = pipeline.kind_of

    def edit_then_run(raw: dict):  # noqa: ANN202
        path.write_text("id: [half-saved\n")  # an editor saving mid-run
        return real(raw)

    monkeypatch.setattr(pipeline, "kind_of", edit_then_run)
    result = invoke("run", path, *run_args(tmp_path))
    assert result.exit_code == 1, result.output  # the check fails, as the spec read at the start says
    assert f"{path}:" in result.output and "checks[0]" in result.output


def test_an_edited_record_is_refused_by_the_index(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, small_spec())
    assert invoke("run", spec, *run_args(tmp_path)).exit_code == 0
    record = tmp_path / "reports" / "tiny.json"
    data = json.loads(record.read_text())
    data["headline"] = "reproduced, trust me"
    record.write_text(json.dumps(data))
    with pytest.raises(EnvironmentFault, match="does not match its digest"):
        write_index([load_spec(spec)], tmp_path / "reports")


def test_synthetic_data_too_large_to_generate_is_refused_by_validate(tmp_path: Path) -> None:
    spec = small_spec()
    spec["data"].update(n=1_000_000, d=10_000)  # each inside its own limit: 80 GB together
    result = invoke("validate", write_spec(tmp_path, spec))
    assert result.exit_code == 2 and "n × d" in one_line(result)


def test_a_gzip_bomb_in_place_of_mnist_is_refused_unpacked_only_to_its_bound(tmp_path: Path) -> None:
    import gzip

    from overparam.data.mnist import MAX_IDX_BYTES, read_idx
    from overparam.errors import OverparamError

    bomb = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as out:
        out.write(b"\x00\x00\x08\x03" + b"\x00" * (MAX_IDX_BYTES + 10))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(OverparamError, match="unpacks to more than"):
        read_idx(bomb)


def test_a_title_or_model_name_is_text_never_markup_or_mathtext(tmp_path: Path) -> None:
    """rich reads `[/b]` as a closing tag, matplotlib `$…$` as mathtext: either crashed a run."""
    spec = small_spec(title=r"T $\foo{$ [/x] title", checks=[{"kind": "bound", "metric": "final_gap", "model": "sh$^{$[/b]", "hi": 1e-30}])
    spec["models"][0]["name"] = "sh$^{$[/b]"
    path = write_spec(tmp_path, spec)
    result = invoke("run", path, *run_args(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "final_gap of sh$^{$[/b]" in result.output
    listed = invoke("list", "--specs", tmp_path)
    assert listed.exit_code == 0 and "[/x]" in listed.output


def test_a_convnet_spec_trains_through_the_executors(tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 2 spreads the convnet's runs over worker processes, one run a group, not ignored."""
    from overparam import executors

    seen: list[int] = []
    real = executors.LocalProcesses.results

    def counted(self, jobs, *args):  # noqa: ANN001, ANN002, ANN202
        seen.extend(len(job.runs) for job in jobs)
        return real(self, jobs, *args)

    monkeypatch.setattr(executors.LocalProcesses, "results", counted)
    spec = {
        "id": "tiny_convnet",
        "experiment": "convnet",
        "title": "Tiny convnet",
        "claim": "A claim for tests.",
        "verdict": {"status": "by checks"},
        "data": {"kind": "mnist", "split": "test", "path": str(mnist_dir)},
        "train": {"steps": 4, "record_every": 2, "batch_size": 16},
        "models": [{"name": "original", "kind": "tutorial_convnet"}, {"name": "twin", "kind": "tutorial_convnet", "overparameterized": True}],
        "seeds": [0, 1],
        "checks": [{"kind": "bound", "metric": "final_loss", "model": "original", "hi": 10.0}],
    }
    path = write_spec(tmp_path, spec)
    result = invoke("run", path, "--jobs", "2", *run_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert seen == [1, 1, 1, 1] and "4 runs trained" in result.output
    alone = invoke("run", path, "--store", tmp_path / "alone.sqlite", "--reports", tmp_path / "alone")
    assert alone.exit_code == 0, alone.output
    assert all_losses(tmp_path / "alone.sqlite") == all_losses(tmp_path / "store.sqlite")  # in a worker or not, the same bits
