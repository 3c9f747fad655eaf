"""The committed paper runs (`reports/paper-runs.sqlite`): every paper report whose runs are in it
is regenerated from them alone (`--stored-only`), and must say what the committed report says.

Paper profiles take hours to train on 2 cores, so their runs are committed beside their reports:
a reader can re-derive every verdict in seconds, and the next machine resumes where the last
one stopped. A spec whose runs are not committed yet is skipped, by name."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MNIST_DIR, REPO, UCI_DIR, needs_mnist, needs_uci
from overparam.cli import app
from overparam.store import RunStore

PAPER_RUNS = REPO / "reports" / "paper-runs.sqlite"
PAPER_REPORTS = sorted(REPO.glob("reports/*-paper.json"))
# What a report says of its evidence; date, commit and wall times are the run's own.
VERDICT_FIELDS = ("spec_id", "profile", "headline", "statements", "verdict_current", "why", "checks", "shaky")


@pytest.fixture
def paper_store() -> Path:
    """The committed file itself: --stored-only and a read-only RunStore write nothing to it."""
    if not PAPER_RUNS.is_file():
        pytest.skip(f"{PAPER_RUNS.relative_to(REPO)} is not committed")
    return PAPER_RUNS


def test_every_committed_paper_run_matches_its_digest(paper_store: Path) -> None:
    keys = [key for (key,) in sqlite3.connect(f"{paper_store.as_uri()}?mode=ro", uri=True).execute("SELECT key FROM runs")]
    store = RunStore(paper_store, read_only=True)
    try:
        assert len(store.get(keys)) == len(keys) > 0  # a changed row raises, naming it
    finally:
        store.close()


@needs_uci
@needs_mnist
@pytest.mark.parametrize("summary", PAPER_REPORTS, ids=lambda path: path.stem)
def test_a_paper_report_follows_from_the_committed_runs(
    summary: Path, paper_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = json.loads(summary.read_text())
    monkeypatch.setenv("OVERPARAM_DATA", str(UCI_DIR))
    monkeypatch.setenv("OVERPARAM_MNIST", str(MNIST_DIR))
    spec = REPO / "specs" / f"{committed['spec_id']}.yaml"
    args = ["run", str(spec), "--profile", committed["profile"], "--stored-only", "--store", str(paper_store), "--reports", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    if result.exit_code == 2 and "are not in this run store" in result.output:
        pytest.skip(f"{committed['spec_id']}: its {committed['profile']} runs are not in {PAPER_RUNS.name} yet")
    assert result.exit_code in (0, 1), result.output
    assert "0 runs trained" in result.output
    regenerated = json.loads((tmp_path / summary.name).read_text())
    assert {f: regenerated[f] for f in VERDICT_FIELDS} == {f: committed[f] for f in VERDICT_FIELDS}
