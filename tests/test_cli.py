"""The CLI end to end, driven through typer's CliRunner: exit codes, output, files written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import small_spec, write_spec
from overparam import provenance
from overparam.cli import app
from overparam.specload import load_spec

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"store": tmp_path / "store.sqlite", "reports": tmp_path / "reports", "specs": tmp_path / "specs"}


def run_args(dirs: dict[str, Path]) -> list[str | Path]:
    return ["--store", dirs["store"], "--reports", dirs["reports"]]


def test_run_writes_a_report_with_figure_and_a_rerun_trains_nothing(tmp_path: Path, dirs: dict[str, Path]) -> None:
    path = write_spec(tmp_path, small_spec())
    first = invoke("run", path, *run_args(dirs))
    assert first.exit_code == 0, first.output
    assert "✓ tiny: reproduced (10 runs trained, 0 from the run store" in first.output
    report = (dirs["reports"] / "tiny.md").read_text()
    assert report.splitlines()[2].startswith("**Reproduced**") and "verdict is **current**" in report and "![tiny](figures/tiny.png)" in report
    assert (dirs["reports"] / "figures" / "tiny.png").read_bytes()[:4] == b"\x89PNG"
    second = invoke("run", path, *run_args(dirs))
    assert second.exit_code == 0
    assert "0 runs trained, 10 from the run store" in second.output
    assert "nothing to train" in second.output
    fresh = invoke("run", path, "--fresh", *run_args(dirs))
    assert "10 runs trained" in fresh.output  # 8 and the 2 one-ulp twins of the checked model


def test_stored_only_reports_from_the_store_and_refuses_to_train(tmp_path: Path, dirs: dict[str, Path]) -> None:
    path = write_spec(tmp_path, small_spec())
    missing = invoke("run", path, "--stored-only", *run_args(dirs))
    assert missing.exit_code == 2 and "no such run store" in missing.output and not dirs["store"].exists()
    assert invoke("run", path, *run_args(dirs)).exit_code == 0
    (dirs["reports"] / "tiny.md").unlink()
    before = dirs["store"].read_bytes()
    again = invoke("run", path, "--stored-only", *run_args(dirs))
    assert again.exit_code == 0, again.output
    assert dirs["store"].read_bytes() == before  # a committed store stays as committed
    assert "0 runs trained, 10 from the run store" in again.output and (dirs["reports"] / "tiny.md").is_file()
    wider = write_spec(tmp_path, small_spec(seeds=[0, 1, 2]))  # a seed the store has never seen
    refused = invoke("run", wider, "--stored-only", *run_args(dirs))
    assert refused.exit_code == 2, refused.output
    assert "of the" in refused.output and "are not in this run store" in refused.output and "Traceback" not in refused.output
    assert "trained" not in refused.output
    both = invoke("run", path, "--stored-only", "--fresh", *run_args(dirs))
    assert both.exit_code == 2 and "pass one" in both.output


def test_a_failing_check_exits_1_and_prints_its_evidence(tmp_path: Path, dirs: dict[str, Path]) -> None:
    spec = small_spec(checks=[{"kind": "bound", "metric": "final_gap", "model": "deep", "hi": 1e-30}])
    result = invoke("run", write_spec(tmp_path, spec), *run_args(dirs))
    assert result.exit_code == 1
    assert "✗ out of date tiny: not reproduced" in result.output and "final_gap of deep ≤ 1e-30" in result.output
    report = (dirs["reports"] / "tiny.md").read_text()
    # The spec's verdict ("reproduced") is not repeated as fact beside a failing check: the headline is what the checks decide.
    assert report.splitlines()[2].startswith("**Not reproduced**") and "**Reproduced**" not in report
    assert "verdict is **out of date**: the spec states *reproduced*, its statements decide *not reproduced*" in report


def test_table_cells_keep_their_pipes_escaped(tmp_path: Path, dirs: dict[str, Path]) -> None:
    """|xᵀw − y|^p in the Setup table must not end its cell: L* stays in the rendered row."""
    import re

    assert invoke("run", write_spec(tmp_path, small_spec()), *run_args(dirs)).exit_code == 0
    report = (dirs["reports"] / "tiny.md").read_text()
    (row,) = [line for line in report.splitlines() if line.startswith("| loss |")]
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
    assert len(cells) == 2 and "L* =" in cells[1] and "\\|xᵀw − y\\|^4" in cells[1]


def test_a_profile_writes_its_own_report(tmp_path: Path, dirs: dict[str, Path]) -> None:
    path = write_spec(tmp_path, small_spec(profiles={"long": {"train": {"steps": 600}}}))
    assert invoke("run", path, "--profile", "long", *run_args(dirs)).exit_code == 0
    assert "steps | 600" in (dirs["reports"] / "tiny-long.md").read_text()


def test_a_model_whose_every_lr_diverges_fails_its_checks_with_the_reason(tmp_path: Path, dirs: dict[str, Path]) -> None:
    spec = small_spec(tune={"lr": [50.0]}, checks=[{"kind": "bound", "metric": "final_gap", "model": "deep", "hi": 1e9}])
    result = invoke("run", write_spec(tmp_path, spec), *run_args(dirs))
    assert result.exit_code == 1 and "every lr of the grid diverged" in result.output


def test_verify_all_runs_every_spec_and_writes_the_index(dirs: dict[str, Path]) -> None:
    dirs["specs"].mkdir()
    write_spec(dirs["specs"], small_spec(), "a.yaml")
    write_spec(dirs["specs"], small_spec(id="other", title="Another claim"), "b.yaml")
    result = invoke("verify-all", "--specs", dirs["specs"], *run_args(dirs))
    assert result.exit_code == 0, result.output
    index = (dirs["reports"] / "README.md").read_text()
    assert "| [Tiny synthetic check](tiny.md) | **reproduced** (default): 1 of 1 checks hold |" in index
    assert "[Another claim](other.md)" in index
    assert "[default](tiny.md); no paper profile |" in index
    declared = 2 * load_spec(dirs["specs"] / "a.yaml").declared_run_steps()
    assert f"verify-all: 2 specs, {declared:,} declared run-steps" in result.output
    assert "verify-all: 1 of 2 specs done in" in result.output and "left at this invocation's pace" in result.output
    assert "verify-all: 2 of 2 specs done in" in result.output


def test_the_time_left_comes_from_each_kinds_own_pace() -> None:
    from overparam.progress import InvocationPace

    pace = InvocationPace([("a", "Fast", 1000), ("b", "Slow", 10), ("c", "Fast", 3000), ("d", "Slow", 20), ("e", "Theory", 0)])
    assert "about 3 min left" in pace.done("a", 60.0) and "not counting b, d" in pace.done("a", 60.0)  # c: 3000 steps at 60 s per 1000
    line = pace.done("b", 600.0)  # Slow: 20 steps at 60 s each
    assert "2 of 5 specs done" in line and "about 23 min left" in line and "not counting" not in line


def test_a_spec_from_the_run_store_does_not_make_the_rest_look_cheap() -> None:
    from overparam.progress import InvocationPace

    pace = InvocationPace([("a", "Fast", 1000), ("b", "Fast", 1000), ("c", "Fast", 1000)])
    assert "not counting b, c" in pace.done("a", 1.0, trained=0, cached=40)  # nothing trained: no pace yet
    assert "about 2 min left" in pace.done("b", 30.0, trained=10, cached=30)  # 250 of its steps in 30 s: c takes 2 min


def test_the_index_shows_the_default_and_the_paper_profile(dirs: dict[str, Path]) -> None:
    dirs["specs"].mkdir()
    failing_paper = {"paper": {"checks": [{"kind": "bound", "metric": "final_gap", "model": "shallow", "hi": 1e-30}]}}
    write_spec(dirs["specs"], small_spec(profiles=failing_paper), "a.yaml")
    assert invoke("verify-all", "--specs", dirs["specs"], *run_args(dirs)).exit_code == 0
    index = (dirs["reports"] / "README.md").read_text()
    assert "[default](tiny.md); paper: not run |" in index  # the paper profile, before it runs
    assert invoke("verify-all", "--specs", dirs["specs"], "--profile", "paper", *run_args(dirs)).exit_code == 1
    row = next(line for line in (dirs["reports"] / "README.md").read_text().splitlines() if "Tiny synthetic check" in line)
    assert "| [Tiny synthetic check](tiny-paper.md) | **not reproduced** ✗ (paper): 0 of 1 checks hold |" in row  # the paper's budget decides
    assert "[default](tiny.md), [paper](tiny-paper.md) |" in row  # linking both reports


def test_verify_all_with_a_profile_skips_the_specs_without_it_with_one_line(dirs: dict[str, Path]) -> None:
    dirs["specs"].mkdir()
    write_spec(dirs["specs"], small_spec(profiles={"paper": {"train": {"steps": 300}}}), "a.yaml")
    write_spec(dirs["specs"], small_spec(id="other", title="No paper budget"), "b.yaml")
    result = invoke("verify-all", "--specs", dirs["specs"], "--profile", "paper", *run_args(dirs))
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if "skipped" in line] == ["other: skipped (no profile 'paper')"]
    assert (dirs["reports"] / "tiny-paper.md").exists() and not (dirs["reports"] / "other.md").exists()
    nowhere = invoke("verify-all", "--specs", dirs["specs"], "--profile", "long", *run_args(dirs))
    assert nowhere.exit_code == 2 and "no spec has a profile 'long'" in nowhere.output


def test_bad_specs_exit_2_with_located_lines_and_no_traceback(tmp_path: Path, dirs: dict[str, Path]) -> None:
    spec = small_spec()
    spec["train"]["steps"] = 0
    spec["seeds"] = "many"
    spec["models"][0]["width"] = -1
    path = write_spec(tmp_path, spec)
    for command in (["validate", path], ["run", path, *run_args(dirs)]):
        result = invoke(*command)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 3 and all(line.startswith(f"{path}:") for line in lines)
        assert "Traceback" not in result.output
    assert not dirs["reports"].exists()


def test_the_readmes_spec_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example)
    result = invoke("validate", tmp_path / "example.yaml")
    assert result.exit_code == 0, result.output


def test_validate_accepts_the_shipped_specs() -> None:
    specs = sorted(Path(__file__).resolve().parents[1].joinpath("specs").glob("*.yaml"))
    result = invoke("validate", *specs)
    assert result.exit_code == 0 and f"{len(specs)} specs valid" in result.output


def test_missing_spec_folder_and_unknown_device_are_one_line(tmp_path: Path) -> None:
    missing = invoke("verify-all", "--specs", tmp_path / "nope")
    assert missing.exit_code == 2 and "no such folder of specs" in missing.output
    device = invoke("run", write_spec(tmp_path, small_spec()), "--device", "tpu")
    assert device.exit_code == 2 and "unknown device" in device.output


def test_list_shows_the_claims_and_schema_is_json(dirs: dict[str, Path]) -> None:
    dirs["specs"].mkdir()
    write_spec(dirs["specs"], small_spec())
    listing = invoke("list", "--specs", dirs["specs"])
    assert listing.exit_code == 0 and "tiny" in listing.output and "shallow, deep" in listing.output
    schema = invoke("schema")
    kinds = json.loads(schema.output)["anyOf"]
    assert schema.exit_code == 0 and len(kinds) == 4 and all("$ref" in kind for kind in kinds)  # regression, convnet, theory, map


def test_the_convnet_claim_runs_end_to_end_on_real_mnist(tmp_path: Path, dirs: dict[str, Path]) -> None:
    mnist = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    spec = {
        "id": "tiny_convnet",
        "experiment": "convnet",
        "title": "Tiny convnet",
        "claim": "A claim for tests.",
        "paper": {"section": "test"},
        "verdict": {"status": "by checks"},
        "data": {"kind": "mnist", "split": "test", "path": str(mnist)},
        "train": {"steps": 4, "record_every": 2, "batch_size": 16},
        "models": [
            {"name": "original", "kind": "tutorial_convnet"},
            {"name": "twin", "kind": "tutorial_convnet", "overparameterized": True},
        ],
        "seeds": [0],
        "checks": [{"kind": "bound", "metric": "final_loss", "model": "twin", "hi": 10.0}],
    }
    path = write_spec(tmp_path, spec)
    first = invoke("run", path, "--checkpoint-every", "1", *run_args(dirs))
    assert first.exit_code == 0, first.output
    checkpoints = dirs["store"].with_name(dirs["store"].name + ".checkpoints")
    assert not list(checkpoints.glob("*.pt"))  # each dropped once its run was stored
    report = (dirs["reports"] / "tiny_convnet.md").read_text()
    assert report.splitlines()[2].startswith("**Reproduced**") and "1,925,614" in report
    assert "0 runs trained, 2 from the run store" in invoke("run", path, *run_args(dirs)).output


def test_progress_without_a_terminal_prints_plain_lines(monkeypatch) -> None:  # noqa: ANN001
    import io

    from rich.console import Console

    from overparam import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    log = io.StringIO()
    bar = progress.RichProgress(Console(file=log, force_terminal=False))
    bar.begin("l4_depth", runs=4, run_steps=4000)
    bar.advance(2000)
    bar.end()
    assert "l4_depth: 2 of 4 runs' steps done" in log.getvalue() and "run-steps/s" in log.getvalue()


def test_run_steps_resumed_from_a_checkpoint_count_as_done_but_not_toward_the_pace(monkeypatch) -> None:  # noqa: ANN001
    import io

    from rich.console import Console

    from overparam import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    log = io.StringIO()
    bar = progress.RichProgress(Console(file=log, force_terminal=False))
    bar.begin("adam_depth", runs=4, run_steps=4_000_000)
    bar.advance(3_000_000, resumed=True)  # a checkpoint's steps, done by an earlier process
    bar.advance(1)
    bar.end()
    last = [line for line in log.getvalue().splitlines() if "steps done" in line][-1]
    assert "3000000 of 4 runs" not in last and "3 of 4 runs' steps done" in last
    speed = float(last.split(" run-steps/s")[0].rsplit(", ", 1)[-1].replace(",", ""))
    assert speed < 1e5  # one run-step in this process, not 3e6 in no time


def test_help_does_not_load_torch() -> None:
    """`overparam --help` answers at once: torch (seconds to import) loads when a command runs."""
    import subprocess
    import sys

    probe = "import sys, overparam.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_claim_beyond_the_paper_needs_no_paper_section(tmp_path: Path, dirs: dict[str, Path]) -> None:
    spec = small_spec()
    del spec["paper"]
    result = invoke("run", write_spec(tmp_path, spec), *run_args(dirs))
    assert result.exit_code == 0, result.output
    assert "Not a claim of the paper" in (dirs["reports"] / "tiny.md").read_text()


def test_a_failing_check_is_named_by_its_file_line_and_index(tmp_path: Path, dirs: dict[str, Path]) -> None:
    checks = [
        {"kind": "bound", "metric": "final_loss", "model": "shallow", "lo": 0.0},
        {"kind": "bound", "metric": "final_loss", "model": "deep", "hi": 1e-30},
    ]
    path = write_spec(tmp_path, small_spec(checks=checks))
    result = invoke("run", path, *run_args(dirs))
    line = [i for i, text in enumerate(path.read_text().splitlines(), 1) if text == "- kind: bound"][1]  # the second check
    assert result.exit_code == 1, result.output
    failing = [text for text in result.output.splitlines() if text.lstrip().startswith("✗ ") and "out of date" not in text]
    assert len(failing) == 2 and "verdict: the spec states *reproduced*, its statements decide *partly reproduced*" in failing[0], result.output
    assert f"{path}:{line}:3: checks[1]: final_loss of deep ≤ 1e-30" in failing[1], result.output


def test_a_variant_is_drawn_dashed_in_its_models_colour() -> None:
    from overparam.figures import COLOURS, LOWER, _line_styles

    styles = _line_styles(["GD", "Adam", "Adam (TF1)", "Adam random init", "GD (TF1) (x)", f"Adam {LOWER}"])
    assert styles[2] == (styles[1][0], "--") and styles[1][1] == "-"  # "Adam (TF1)": Adam's colour, dashed
    assert styles[3] == (COLOURS[2], "-")  # no parenthesised note: a curve of its own
    assert styles[4] == (styles[0][0], "--")
    assert styles[5] == (styles[1][0], ":")  # the run one lr step lower under a fragile check: dotted, apart from a variant


def test_a_reports_commit_is_the_one_its_run_started_at_even_if_the_checkout_moves_on(tmp_path: Path) -> None:
    """The .md asks from specs/ before training, the .json from reports/ after: one answer."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    (tmp_path / "specs").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "specs" / "a.yaml").write_text("a")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "the code the run loads")
    started_at = provenance.git_commit(tmp_path / "specs")
    (tmp_path / "specs" / "a.yaml").write_text("b")
    git("commit", "-qam", "committed while it trains")
    assert started_at == git("rev-parse", "--short=12", "HEAD~1")
    assert provenance.git_commit(tmp_path / "reports") == started_at
