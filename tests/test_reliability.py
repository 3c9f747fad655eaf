"""A sweep survives SIGKILL and resumes from the store; two processes can share one store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import all_losses, planned_runs_of_every_kind, small_spec, write_spec
from overparam.engine.kernel import fused_kernel
from overparam.plan import MAX_SHARED_RUNS, grouped
from overparam.sweep.train import train_group

pytestmark = pytest.mark.slow  # processes, kills and many batch compositions: minutes


def sweep_spec(steps: int) -> dict:
    """Four groups, each long enough to be interrupted between groups (one loss per model, so
    that they cannot share one pass over the data and one program)."""
    models = [
        {"name": f"depth-{n}", "kind": "linear_net", "depth": n, "width": 5, "loss": {"kind": "lp", "p": p}}
        for n, p in zip((1, 2, 3, 4), (2.0, 3.0, 4.0, 6.0))
    ]
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
    assert f"{18 - finished} runs trained, {finished} from the run store" in output  # 16 and 2 one-ulp twins

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
    assert stored_rows(store) == 18  # 16 and 2 one-ulp twins
    table = [(tmp_path / d / "tiny.md").read_text().split("## Results per model")[1].split("## Learning-rate sweep")[0] for d in ("a", "b")]
    assert table[0] == table[1]


@pytest.mark.parametrize("p", [4.0, 2.0])
@pytest.mark.parametrize("data", [{"kind": "uci_gas", "gas_class": 1, "standardize": True}, {"kind": "synthetic", "n": 300, "d": 17}])
def test_a_runs_numbers_do_not_depend_on_the_runs_that_share_its_batch(tmp_path: Path, p: float, data: dict) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, p, data)
    for model in dict.fromkeys(run.model for run in runs):
        own = [run for run in runs if run.model == model]
        target, others = own[0], own[1:]
        compositions = [[target], [others[0], target], [others[2], others[1], target], others[:4] + [target] + others[4:]]
        trained = [train_group(group, dataset, "cpu", lambda _: None) for group in compositions]
        alone = trained[0][0]
        assert alone.diverged_at is None and bool(torch.isfinite(alone.losses).all())
        for group, result in zip(compositions, trained):
            mine = result[group.index(target)]
            assert torch.equal(mine.losses, alone.losses), f"{model}: a batch of {len(group)} changed the loss curve"
            assert torch.equal(mine.end_to_end, alone.end_to_end), f"{model}: a batch of {len(group)} changed W_e"


@pytest.mark.parametrize("p", [4.0, 2.0])
def test_a_runs_numbers_do_not_depend_on_the_models_that_share_its_data_pass(tmp_path: Path, p: float) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, p, {"kind": "uci_gas", "gas_class": 1, "standardize": True})
    assert len(grouped(runs)) == 1  # eight model kinds and shapes, one program
    together = train_group(runs, dataset, "cpu", lambda _: None)
    # Each run records what computed it: the C kernels where there is a compiler, else torch ops.
    assert {r.device for r in together} == {"cpu (C kernels)" if fused_kernel() is not None else "cpu (torch ops)"}
    for run, shared in zip(runs, together):
        alone = train_group([run], dataset, "cpu", lambda _: None)[0]
        assert shared.key == alone.key
        assert torch.equal(shared.losses, alone.losses), f"{run.model} lr={run.lr}: sharing the data pass changed the loss curve"
        assert torch.equal(shared.end_to_end, alone.end_to_end), f"{run.model} lr={run.lr}: sharing the data pass changed W_e"


def test_programs_share_a_data_pass_only_where_loss_and_schedule_agree(tmp_path: Path) -> None:
    runs = planned_runs_of_every_kind(tmp_path, 4.0, {"kind": "synthetic", "n": 300, "d": 17})[0]
    runs += planned_runs_of_every_kind(tmp_path, 2.0, {"kind": "synthetic", "n": 300, "d": 17})[0]
    programs = grouped(runs)
    assert sorted(map(len, programs)) == [64, 64]
    for program in programs:
        assert len({run.pass_key for run in program}) == 1
    many = [
        replace(run, config=run.config.model_copy(update={"model": {**run.config.model_dump()["model"], "width": w}}))
        for w in range(2, 9)
        for run in runs[:10]
    ]
    sizes = [len(program) for program in grouped(many)]
    assert max(sizes) <= MAX_SHARED_RUNS and sum(sizes) == 70


def test_a_runs_numbers_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    """What lets worker processes and Ray workers (fewer threads each) store the same numbers."""
    runs, dataset = planned_runs_of_every_kind(tmp_path, 4.0, {"kind": "uci_gas", "gas_class": 1, "standardize": True})
    runs += planned_runs_of_every_kind(tmp_path, 2.0, {"kind": "uci_gas", "gas_class": 1, "standardize": True})[0]
    threads = torch.get_num_threads()
    try:
        per_count = []
        for count in (1, 3):
            torch.set_num_threads(count)
            per_count.append([r for group in grouped(runs) for r in train_group(group, dataset, "cpu", lambda _: None)])
    finally:
        torch.set_num_threads(threads)
    for one, three in zip(*per_count):
        assert torch.equal(one.losses, three.losses) and torch.equal(one.end_to_end, three.end_to_end), one.config
