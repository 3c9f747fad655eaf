"""A sweep survives SIGKILL and resumes from the store; two processes can share one store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import small_spec, write_spec
from overparam.store import RunStore


def sweep_spec(steps: int) -> dict:
    """Four groups (one per model shape), each long enough to be interrupted between groups."""
    models = [{"name": f"depth-{n}", "kind": "linear_net", "depth": n, "width": 5} for n in (1, 2, 3, 4)]
    return small_spec(
        models=models,
        train={"steps": steps, "record_every": 100, "init": {"kind": "normal", "std": 0.1}},
        checks=[{"kind": "bound", "metric": "final_loss", "model": "depth-1", "lo": 0.0}],
    )


def overparam(*args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "overparam", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def stored_rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def all_losses(store: Path) -> dict[str, list[float]]:
    db = RunStore(store)
    keys = [k for (k,) in db._db.execute("SELECT key FROM runs")]
    runs = db.get(keys)
    db.close()
    return {k: r.losses.tolist() for k, r in runs.items()}


def test_a_killed_sweep_resumes_from_the_store_with_the_same_numbers(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, sweep_spec(steps=20000))
    killed_store, clean_store = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    victim = overparam("run", spec, "--store", killed_store, "--reports", tmp_path / "r1")
    deadline = time.time() + 120
    while stored_rows(killed_store) == 0 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    assert victim.poll() is None, "the sweep finished before it could be killed; make it longer"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    finished = stored_rows(killed_store)
    assert 0 < finished < 16
    assert not (tmp_path / "r1" / "tiny.md").exists()  # no half-written report

    resumed = overparam("run", spec, "--store", killed_store, "--reports", tmp_path / "r1")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert f"{16 - finished} runs trained, {finished} from the run store" in output

    clean = overparam("run", spec, "--store", clean_store, "--reports", tmp_path / "r2")
    assert clean.communicate(timeout=600)[0] and clean.returncode == 0
    assert all_losses(killed_store) == all_losses(clean_store)  # bit for bit


def test_two_processes_share_one_store_and_agree(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, sweep_spec(steps=3000))
    store = tmp_path / "shared.sqlite"
    first = overparam("run", spec, "--store", store, "--reports", tmp_path / "a")
    second = overparam("run", spec, "--store", store, "--reports", tmp_path / "b")
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert stored_rows(store) == 16
    table = [(tmp_path / d / "tiny.md").read_text().split("## Results per model")[1].split("## Learning-rate sweep")[0] for d in ("a", "b")]
    assert table[0] == table[1]
