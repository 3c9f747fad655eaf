"""Checkpoints inside a group: a group resumes from its last checkpoint bit for bit, Ctrl-C keeps
everything, a kill loses at most the checkpoint interval, a damaged checkpoint is set aside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import all_losses, planned_runs_of_every_kind, small_spec, write_spec
from overparam.checkpoint import Checkpoints
from overparam.plan import grouped
from overparam.trainer import train_group


def test_a_group_stopped_mid_way_resumes_from_its_checkpoint_bit_for_bit(tmp_path: Path) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, 4.0, {"kind": "synthetic", "n": 300, "d": 17})
    (group,) = grouped(runs)
    whole = train_group(group, dataset, "cpu", lambda _: None)
    checkpoints = Checkpoints(tmp_path / "checkpoints", every_s=0.0)  # a checkpoint at every step

    def crash_at_step_40(run_steps: int) -> None:  # called at each recorded step (0, 20, 40, 60)
        if crash_at_step_40.done >= 20 * len(group):
            raise RuntimeError("crash")
        crash_at_step_40.done += run_steps

    crash_at_step_40.done = 0  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        train_group(group, dataset, "cpu", crash_at_step_40, checkpoints.for_group([r.key for r in group]))
    saved = torch.load(next((tmp_path / "checkpoints").glob("*.pt")), weights_only=True)
    assert saved["step"] == 40
    reported: list[tuple[int, bool]] = []
    resumed = train_group(
        group, dataset, "cpu", lambda n, resumed=False: reported.append((n, resumed)), checkpoints.for_group([r.key for r in group])
    )
    for a, b in zip(whole, resumed):
        assert torch.equal(a.losses, b.losses) and torch.equal(a.end_to_end, b.end_to_end), a.config["model"]
    # the checkpoint's 40 steps count as done but were not trained here: the progress's pace leaves them out
    assert reported[0] == (40 * len(group), True)
    assert sum(n for n, was_resumed in reported if not was_resumed) == 20 * len(group)


def test_a_damaged_checkpoint_is_set_aside_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, 2.0, {"kind": "synthetic", "n": 300, "d": 17})
    (group,) = grouped(runs)
    checkpoint = Checkpoints(tmp_path / "checkpoints").for_group([r.key for r in group])
    checkpoint.path.parent.mkdir()
    checkpoint.path.write_bytes(b"PK\x03\x04 not a checkpoint")
    again = train_group(group, dataset, "cpu", lambda _: None, checkpoint)
    assert [r.losses.tolist() for r in again] == [r.losses.tolist() for r in train_group(group, dataset, "cpu", lambda _: None)]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "checkpoint unreadable" in lines[0] and str(checkpoint.path) in lines[0]
    assert not checkpoint.path.exists()


def long_group_spec() -> dict:
    """One group of runs that takes several seconds."""
    return small_spec(
        train={"steps": 60_000, "record_every": 1000, "init": {"kind": "normal", "std": 0.1}},
        tune={"lr": [0.003, 0.01]},
        checks=[{"kind": "bound", "metric": "final_loss", "model": "shallow", "lo": 0.0}],
    )


def start(spec: Path, store: Path, reports: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "overparam",
        "run",
        str(spec),
        "--store",
        str(store),
        "--reports",
        str(reports),
        "--checkpoint-every",
        "0.3",
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


def wait_for_a_checkpoint(store: Path, process: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while not list(store.parent.glob(f"{store.name}.checkpoints/*.pt")):
        assert process.poll() is None, "the group finished before a checkpoint; make it longer"
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.05)
    time.sleep(0.3)  # a few more checkpoints: the group is well under way


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[float]]:
    """The same spec run once without interruption: what every resumed run must equal."""
    folder = tmp_path_factory.mktemp("clean")
    spec, store = write_spec(folder, long_group_spec()), folder / "clean.sqlite"
    clean = start(spec, store, folder / "reports")
    output = clean.communicate(timeout=600)[0]
    assert clean.returncode == 0, output
    return all_losses(store)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_run_resumes_and_ends_bit_identical(tmp_path: Path, how: signal.Signals, uninterrupted: dict) -> None:
    spec = write_spec(tmp_path, long_group_spec())
    store = tmp_path / "interrupted.sqlite"
    victim = start(spec, store, tmp_path / "r1")
    wait_for_a_checkpoint(store, victim)
    victim.send_signal(how)
    output = victim.communicate(timeout=120)[0]
    if how == signal.SIGINT:
        assert victim.returncode == 130, output
        assert "the group in training was kept: its checkpoint is at step" in output and "Traceback" not in output
    resumed = start(spec, store, tmp_path / "r1")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "8 runs resume from their checkpoint at step" in output
    assert not list(store.parent.glob(f"{store.name}.checkpoints/*.pt"))  # dropped once stored
    assert all_losses(store) == uninterrupted  # bit for bit
