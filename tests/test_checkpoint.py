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
from overparam.errors import EnvironmentFault
from overparam.plan import grouped
from overparam.sweep.train import train_group


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
    assert checkpoints.for_group([r.key for r in group]).load()["step"] == 40
    reported: list[tuple[int, bool]] = []
    resumed = train_group(
        group, dataset, "cpu", lambda n, resumed=False: reported.append((n, resumed)), checkpoints.for_group([r.key for r in group])
    )
    for a, b in zip(whole, resumed):
        assert torch.equal(a.losses, b.losses) and torch.equal(a.end_to_end, b.end_to_end), a.config["model"]
    # the checkpoint's 40 steps count as done but were not trained here: the progress's pace leaves them out
    assert reported[0] == (40 * len(group), True)
    assert sum(n for n, was_resumed in reported if not was_resumed) == 20 * len(group)


def test_a_damaged_checkpoint_is_set_aside_and_refused(tmp_path: Path) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, 2.0, {"kind": "synthetic", "n": 300, "d": 17})
    (group,) = grouped(runs)
    checkpoint = Checkpoints(tmp_path / "checkpoints").for_group([r.key for r in group])
    checkpoint.path.parent.mkdir()
    checkpoint.path.write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(EnvironmentFault, match="checkpoint damaged") as fault:
        train_group(group, dataset, "cpu", lambda _: None, checkpoint)
    assert len(fault.value.lines) == 1 and str(checkpoint.path) in fault.value.lines[0]
    assert not checkpoint.path.exists() and checkpoint.path.with_name(checkpoint.path.name + ".damaged").exists()
    again = train_group(group, dataset, "cpu", lambda _: None, checkpoint)  # the rerun: from the start
    assert [r.losses.tolist() for r in again] == [r.losses.tolist() for r in train_group(group, dataset, "cpu", lambda _: None)]


def test_a_checkpoint_with_flipped_bytes_in_a_layer_is_never_resumed(tmp_path: Path) -> None:
    """torch checks no CRC: flipped bytes inside a tensor load as other weights. The digest shows them."""
    runs, dataset = planned_runs_of_every_kind(tmp_path, 4.0, {"kind": "synthetic", "n": 300, "d": 17})
    (group,) = grouped(runs)
    checkpoints = Checkpoints(tmp_path / "checkpoints", every_s=0.0)

    def crash(run_steps: int) -> None:
        crash.done += run_steps  # type: ignore[attr-defined]
        if crash.done > 20 * len(group):  # type: ignore[attr-defined]
            raise RuntimeError("crash")

    crash.done = 0  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        train_group(group, dataset, "cpu", crash, checkpoints.for_group([r.key for r in group]))
    path = checkpoints.for_group([r.key for r in group]).path
    blob = bytearray(path.read_bytes())
    middle = len(blob) * 2 // 3  # inside the tensors' data, past the header
    blob[middle : middle + 4] = bytes(b ^ 0x10 for b in blob[middle : middle + 4])
    path.write_bytes(bytes(blob))
    with pytest.raises(EnvironmentFault, match="do not match their digest"):
        train_group(group, dataset, "cpu", lambda _: None, checkpoints.for_group([r.key for r in group]))


def long_group_spec() -> dict:
    """One group of runs that takes several seconds."""
    return small_spec(
        train={"steps": 60_000, "record_every": 1000, "init": {"kind": "normal", "std": 0.1}},
        tune={"lr": [0.003, 0.01]},
        checks=[{"kind": "bound", "metric": "final_loss", "model": "shallow", "lo": 0.0}],
    )


def start(spec: Path, store: Path, reports: Path, *extra: str) -> subprocess.Popen:
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
        "1",
        *extra,
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
@pytest.mark.parametrize(
    "how", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sighup", "kill"]
)
def test_an_interrupted_run_resumes_and_ends_bit_identical(tmp_path: Path, how: signal.Signals, uninterrupted: dict) -> None:
    """SIGTERM and SIGHUP (schedulers, `timeout`, a closed terminal) stop a run as Ctrl-C does:
    checkpoint, one line, exit 128 + the signal's number."""
    spec = write_spec(tmp_path, long_group_spec())
    store = tmp_path / "interrupted.sqlite"
    victim = start(spec, store, tmp_path / "r1")
    wait_for_a_checkpoint(store, victim)
    victim.send_signal(how)
    output = victim.communicate(timeout=120)[0]
    if how != signal.SIGKILL:
        assert victim.returncode == 128 + how, output
        assert "the group in training was kept: its checkpoint is at step" in output and "Traceback" not in output
    resumed = start(spec, store, tmp_path / "r1")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "8 runs resume from their checkpoint at step" in output
    assert not list(store.parent.glob(f"{store.name}.checkpoints/*.pt"))  # dropped once stored
    assert all_losses(store) == uninterrupted  # bit for bit


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_workers_die_with_their_parent_even_when_it_is_killed(tmp_path: Path) -> None:
    spec = long_group_spec()
    spec["models"][1]["loss"] = {"kind": "lp", "p": 2}  # another loss: another group, for the second worker
    store = tmp_path / "store.sqlite"
    victim = start(write_spec(tmp_path, spec), store, tmp_path / "r", "--jobs", "2")
    wait_for_a_checkpoint(store, victim)
    workers = [pid for pid in _children(victim.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2, workers
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)  # not communicate(): the workers hold the output pipe until they end
    deadline = time.time() + 90
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its killed parent"
    assert victim.stdout is not None
    victim.stdout.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_sigterm_to_the_driver_stops_its_workers_at_a_checkpoint(tmp_path: Path) -> None:
    spec = long_group_spec()
    spec["models"][1]["loss"] = {"kind": "lp", "p": 2}
    store = tmp_path / "store.sqlite"
    victim = start(write_spec(tmp_path, spec), store, tmp_path / "r", "--jobs", "2")
    wait_for_a_checkpoint(store, victim)
    workers = [pid for pid in _children(victim.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    victim.send_signal(signal.SIGTERM)
    output = victim.communicate(timeout=120)[0]
    assert victim.returncode == 143, output
    assert "interrupted (SIGTERM)" in output and "Traceback" not in output, output
    assert not any(_alive(pid) for pid in workers)
    assert list(store.parent.glob(f"{store.name}.checkpoints/*.pt"))  # the groups in training were kept


@pytest.mark.slow
def test_a_checkpoint_damaged_after_a_kill_is_refused_then_retrained_from_the_start(tmp_path: Path, uninterrupted: dict) -> None:
    spec = write_spec(tmp_path, long_group_spec())
    store = tmp_path / "interrupted.sqlite"
    victim = start(spec, store, tmp_path / "r1")
    wait_for_a_checkpoint(store, victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=120)
    (checkpoint,) = store.parent.glob(f"{store.name}.checkpoints/*.pt")
    blob = bytearray(checkpoint.read_bytes())
    middle = len(blob) * 2 // 3  # among the tensors' bytes, which torch.load reads without a check
    blob[middle : middle + 4] = bytes(b ^ 0x01 for b in blob[middle : middle + 4])
    checkpoint.write_bytes(bytes(blob))
    refused = start(spec, store, tmp_path / "r1")
    output = refused.communicate(timeout=600)[0]
    assert refused.returncode == 3, output
    assert f"{checkpoint}: checkpoint damaged" in output and "Traceback" not in output
    again = start(spec, store, tmp_path / "r1")
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "resume" not in output, output
    assert all_losses(store) == uninterrupted
