"""Faults of the machine or the run store: one line naming the path and what to do, exit 3 (2
for a bad path given on the command line), nothing half written, and a store changed behind
overparam's back is refused rather than reported."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import all_losses, small_spec, write_spec
from overparam.atomic import write_whole
from overparam.cli import app
from overparam.errors import EnvironmentFault


def run(tmp_path: Path, *extra: str, store: Path | None = None, reports: Path | None = None):
    spec = write_spec(tmp_path, small_spec())
    store = store or tmp_path / "store.sqlite"
    reports = reports or tmp_path / "reports"
    return CliRunner().invoke(app, [*extra, "run", str(spec), "--store", str(store), "--reports", str(reports)])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_store_that_is_not_sqlite_is_a_fault(tmp_path: Path) -> None:
    store = tmp_path / "notes.txt"
    store.write_text("my notes, not a database\n" * 100)
    result = run(tmp_path, store=store)
    assert result.exit_code == 3
    assert str(store) in one_line(result) and "not a database" in one_line(result)
    assert store.read_text().startswith("my notes")  # untouched


def test_a_truncated_store_is_a_fault(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 3])
    result = run(tmp_path, store=store)
    assert result.exit_code == 3 and str(store) in one_line(result)


def test_another_programs_database_is_not_used(tmp_path: Path) -> None:
    store = tmp_path / "theirs.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
    result = run(tmp_path, store=store)
    assert result.exit_code == 3 and "not an overparam run store (it holds the tables invoices)" in one_line(result)
    with sqlite3.connect(store) as db:
        assert [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["invoices"]


def test_a_tampered_run_is_refused_naming_it(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    with sqlite3.connect(store) as db:
        key, blob = db.execute("SELECT key, losses FROM runs LIMIT 1").fetchone()
        import zlib

        import torch

        losses = torch.frombuffer(bytearray(zlib.decompress(blob)), dtype=torch.float64).clone()
        losses[-1] *= 0.25
        db.execute("UPDATE runs SET losses = ? WHERE key = ?", (zlib.compress(losses.numpy().tobytes()), key))
    result = run(tmp_path, store=store)
    assert result.exit_code == 3
    line = one_line(result)
    assert f"run {key}" in line and "changed after it was written" in line and "--fresh" in line
    assert run(tmp_path, "--debug", store=store).exit_code == 3
    assert "Traceback" in run(tmp_path, "--debug", store=store).output


def test_reports_pointing_at_a_file_is_refused_before_training(tmp_path: Path) -> None:
    reports = tmp_path / "report.md"
    reports.write_text("x")
    result = run(tmp_path, reports=reports)
    assert result.exit_code == 2 and "a file, not a folder" in one_line(result)
    assert (
        not (tmp_path / "store.sqlite").exists()
        or sqlite3.connect(tmp_path / "store.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    )


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` unwritable, for root too: permissions for a user; root writes through those, so the
    immutable attribute (chattr +i), where the file system and capabilities allow it."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield
        path.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root, where chattr +i is not allowed: nothing here is read-only to root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_reports_folder_is_a_fault_before_training(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    with read_only(reports):
        result = run(tmp_path, reports=reports)
    assert result.exit_code == 3 and str(reports) in one_line(result)


def test_a_read_only_store_folder_is_a_fault_before_training(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    with read_only(folder):
        result = run(tmp_path, store=folder / "store.sqlite")
    assert result.exit_code == 3 and str(folder / "store.sqlite") in one_line(result)
    assert "Traceback" not in result.output


def test_a_full_disk_leaves_no_half_file_and_is_one_fault(tmp_path: Path) -> None:
    def full(partial: Path) -> None:
        partial.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))

    target = tmp_path / "figures" / "claim.png"
    with pytest.raises(EnvironmentFault) as fault:
        write_whole(target, full)
    assert str(target) in fault.value.lines[0] and "No space left" in fault.value.lines[0]
    assert list((tmp_path / "figures").iterdir()) == []  # neither the file nor its temporary


def test_a_full_disk_under_the_store_is_one_fault_and_keeps_what_was_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own "database or disk is full" (SQLITE_FULL), raised by capping the file's pages."""
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    kept = all_losses(store)
    connect = sqlite3.connect

    def capped(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)  # type: ignore[arg-type]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
        return db

    monkeypatch.setattr(sqlite3, "connect", capped)
    more = write_spec(tmp_path, small_spec(seeds=[5, 6]), name="more.yaml")  # new runs to store
    result = CliRunner().invoke(app, ["run", str(more), "--store", str(store), "--reports", str(tmp_path / "reports")])
    last = result.output.strip().splitlines()[-1]  # after the progress lines of the training it could not store
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert last.startswith(f"{store}: cannot write the run store (database or disk is full); free disk space"), last
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert all_losses(store) == kept


def test_a_store_from_before_digests_is_refused_untouched(tmp_path: Path) -> None:
    """Its rows cannot be checked: an edited loss in it would be reported as fact if it were migrated."""
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    columns = "key, config, losses, diverged_at, wall_s, device, created, end_to_end, penalty"
    legacy = tmp_path / "legacy.sqlite"
    with sqlite3.connect(legacy) as db:  # as an earlier version wrote it: no meta, no digest column
        db.execute(f"CREATE TABLE runs ({columns.replace('key', 'key TEXT PRIMARY KEY', 1)})")
        db.execute(f"ATTACH DATABASE '{store}' AS new")
        db.execute(f"INSERT INTO runs SELECT {columns} FROM new.runs")
    spec = write_spec(tmp_path, small_spec())
    before = legacy.read_bytes()
    for extra in (["--stored-only"], []):
        result = CliRunner().invoke(app, ["run", str(spec), *extra, "--store", str(legacy), "--reports", str(tmp_path / "r")])
        assert result.exit_code == 3 and "from before digests" in one_line(result), result.output
        assert legacy.read_bytes() == before


def test_a_store_stripped_of_its_digest_column_is_refused_untouched(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        kept = "key, config, losses, diverged_at, wall_s, device, created, end_to_end, penalty"
        db.execute(f"CREATE TABLE stripped AS SELECT {kept} FROM runs")
        db.execute("DROP TABLE runs")
        db.execute("ALTER TABLE stripped RENAME TO runs")
    before = store.read_bytes()
    result = run(tmp_path, store=store)
    assert result.exit_code == 3 and "lacks digest" in one_line(result), result.output
    assert store.read_bytes() == before


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ({"app": "overparam", "schema": "3"}, "upgrade overparam"),
        ({"app": "mlflow", "schema": "2"}, "its meta names the app 'mlflow'"),
        ({"app": "overparam"}, "a run store of schema ''"),
    ],
)
@pytest.mark.parametrize("stored_only", [False, True])
def test_a_store_it_does_not_know_is_refused_untouched(tmp_path: Path, meta: dict[str, str], says: str, stored_only: bool) -> None:
    store = tmp_path / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("DELETE FROM meta")
        db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    before = store.read_bytes()
    spec = write_spec(tmp_path, small_spec())
    extra = ["--stored-only"] if stored_only else []
    result = CliRunner().invoke(app, ["run", str(spec), *extra, "--store", str(store), "--reports", str(tmp_path / "r")])
    assert result.exit_code == 3 and says in one_line(result), result.output
    assert store.read_bytes() == before


def test_stored_only_refuses_another_programs_database_without_writing_to_it(tmp_path: Path) -> None:
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    before = foreign.read_bytes()
    spec = write_spec(tmp_path, small_spec())
    result = CliRunner().invoke(app, ["run", str(spec), "--stored-only", "--store", str(foreign), "--reports", str(tmp_path / "r")])
    assert result.exit_code == 3 and one_line(result).startswith(f"{foreign}: not an overparam run store (it holds the tables people);")
    assert foreign.read_bytes() == before


def test_stored_only_reads_a_wal_store_in_a_folder_it_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    store = folder / "store.sqlite"
    assert run(tmp_path, store=store).exit_code == 0
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for leftover in folder.glob("store.sqlite-*"):
        leftover.unlink()
    spec = write_spec(tmp_path, small_spec())
    with read_only(folder):
        result = CliRunner().invoke(app, ["run", str(spec), "--stored-only", "--store", str(store), "--reports", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
