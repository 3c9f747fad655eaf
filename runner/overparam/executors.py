"""Where groups of runs train: in this process (default), in local worker processes, or on Ray.

Workers only compute: each returns its group's StoredRuns and the driver writes them to the
run store, which stays the single source of truth (a rerun skips what is there). A run's
numbers do not depend on where it trained: the C kernels sum in one fixed order whatever the
thread count (engine/kernel.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from overparam.checkpoint import Checkpoints, GroupCheckpoint
from overparam.data.dataset import Dataset
from overparam.errors import OverparamError
from overparam.plan import Run, grouped
from overparam.store import RunStore, StoredRun


class StepsDone(Protocol):
    def __call__(self, run_steps: int, resumed: bool = False) -> None:
        """`run_steps` just finished; `resumed`: finished in an earlier process (a checkpoint's), so
        they count toward what is done but not toward the pace."""


class GroupTrainer(Protocol):
    """What trains one group of runs on its data, from its checkpoint if one is kept: a kind's own
    (the lr sweeps': sweep.train.train_group), a top-level function, so a worker process gets it."""

    def __call__(
        self, group: list[Run], dataset: Dataset, device: str, on_progress: StepsDone, checkpoint: GroupCheckpoint | None = None
    ) -> list[StoredRun]: ...


@dataclass(frozen=True)
class Job:
    """One group of runs that share a batched program, the data they train on, and what trains them."""

    runs: list[Run]
    dataset: Dataset
    train: GroupTrainer

    @property
    def run_steps(self) -> int:
        return sum(run.steps for run in self.runs)

    @property
    def memory_bytes(self) -> int:
        d = self.dataset.shape[1]
        return 3 * self.dataset.X.numel() * 8 + sum(run.config.memory_bytes(d) for run in self.runs)


def jobs_for(runs: list[Run], dataset: Dataset, train: GroupTrainer) -> list[Job]:
    return [Job(group, dataset, train) for group in grouped(runs)]


def train_jobs(
    jobs: list[Job], executor: Executor, store: RunStore, device: str, on_progress: StepsDone, checkpoints: Checkpoints | None
) -> None:
    """Train every job where `executor` says; the driver stores each group as it comes back, then
    drops its checkpoint, so a crash loses at most the work since the groups' last checkpoints.
    Jobs that would need more memory than the machine has are refused before any of them trains."""
    refuse_beyond_memory(jobs, executor)
    for stored in executor.results(jobs, device, on_progress, checkpoints):
        store.put(stored)
        if checkpoints is not None:
            checkpoints.discard([run.key for run in stored])


def refuse_beyond_memory(jobs: list[Job], executor: Executor) -> None:
    """OverparamError (exit 2) where the largest group, times the groups training at once here,
    needs more memory than this machine has (estimated: RunConfig.memory_bytes)."""
    if not jobs:
        return
    each, largest = max(((job.memory_bytes, job) for job in jobs), key=lambda pair: pair[0])  # each estimate once
    at_once = min(len(jobs), executor.workers) if isinstance(executor, LocalProcesses) else 1
    need, have = each * at_once, machine_memory()
    if have and need > have:
        models = ", ".join(dict.fromkeys(run.model for run in largest.runs))
        raise OverparamError(
            f"training needs about {need / 2**30:.1f} GiB ({len(largest.runs)} runs of {models} at once"
            + (f", {at_once} groups in parallel" if at_once > 1 else "")
            + f"), more than this machine's {have / 2**30:.1f} GiB; lower width, depth or the lr grid, or use --jobs 1"
        )


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit where lower; 0 if unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 0
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit)) if total else int(limit)
    except OSError:
        pass
    return total


class Executor(Protocol):
    def results(self, jobs: list[Job], device: str, on_progress: StepsDone, checkpoints: Checkpoints | None) -> Iterator[list[StoredRun]]:
        """Every job's StoredRuns, in the order they finish."""
        ...


class InProcess:
    """One group after the other in this process, with progress inside each group."""

    def results(self, jobs: list[Job], device: str, on_progress: StepsDone, checkpoints: Checkpoints | None) -> Iterator[list[StoredRun]]:
        for job in jobs:
            checkpoint = checkpoints.for_group([run.key for run in job.runs]) if checkpoints else None
            yield job.train(job.runs, job.dataset, device, on_progress, checkpoint)


class LocalProcesses:
    """`--jobs N`: N worker processes on this machine, the cores shared out between them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def results(self, jobs: list[Job], device: str, on_progress: StepsDone, checkpoints: Checkpoints | None) -> Iterator[list[StoredRun]]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        context = multiprocessing.get_context("spawn")  # a forked torch can deadlock in its thread pool
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_die_with, initargs=(os.getpid(),)) as pool:
            pending: dict[Future[list[StoredRun]], Job] = {
                pool.submit(train_in_worker, job.train, job.runs, job.dataset, device, threads, checkpoints): job for job in jobs
            }
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = pending.pop(future)
                        on_progress(job.run_steps)
                        yield future.result()
            except BaseException as stop:
                # Ctrl-C, SIGTERM, SIGHUP or a failed group: the workers checkpoint their groups and stop
                # at their next step (deferring_interrupts), rather than the pool waiting hours for them.
                for future in pending:
                    future.cancel()
                signum = getattr(stop, "signum", signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM)
                for worker in multiprocessing.active_children():
                    if worker.pid:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(worker.pid, signum)
                raise


class RayExecutor:
    """`--executor ray`: one Ray task per group, on a local Ray instance or the cluster at `address`.
    No checkpoints inside groups: a worker may be on another machine than the store."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers = address, workers

    def results(self, jobs: list[Job], device: str, on_progress: StepsDone, checkpoints: Checkpoints | None) -> Iterator[list[StoredRun]]:
        ray = _ray()
        if not ray.is_initialized():
            self._connect(ray)
        task = ray.remote(num_cpus=1, num_gpus=1 if device.startswith("cuda") else 0)(train_in_worker)
        data_refs: dict[int, Any] = {}
        pending: dict[Any, Job] = {}
        for job in jobs:
            if id(job.dataset) not in data_refs:  # each dataset goes to the object store once
                data_refs[id(job.dataset)] = ray.put(job.dataset)
            pending[task.remote(job.train, job.runs, data_refs[id(job.dataset)], device, 1)] = job
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                result = ray.get(done[0])
                on_progress(job.run_steps)
                yield result
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _connect(self, ray: Any) -> None:
        import overparam

        env: dict[str, Any] = {"env_vars": {"MKL_CBWR": os.environ.get("MKL_CBWR", "AUTO,STRICT")}}
        if self.address:  # a remote cluster may not have this package installed: ship it
            env["py_modules"] = [overparam]
            ray.init(address=self.address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=self.workers, runtime_env=env, log_to_driver=False, include_dashboard=False)


def _die_with(parent: int) -> None:
    """A worker's first act: watch its parent, and stop when it is gone (killed, even by SIGKILL,
    which nothing can catch): SIGTERM to itself, so a group in training checkpoints and stops, then
    an exit in any case, so that no orphan trains on or sits idle forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        _between_groups.wait(timeout=60.0)  # time to save a checkpoint at the next step
        os._exit(143)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # between groups the driver stops it; in a group, deferring_interrupts
    threading.Thread(target=watch, name="overparam-parent-watch", daemon=True).start()


def train_in_worker(
    train: GroupTrainer, runs: list[Run], dataset: Dataset, device: str, threads: int, checkpoints: Checkpoints | None = None
) -> list[StoredRun]:
    """A worker's whole job: train one group with `threads` threads, hand the results back."""
    torch.set_num_threads(threads)
    checkpoint = checkpoints.for_group([run.key for run in runs]) if checkpoints else None
    _between_groups.clear()
    try:
        return train(runs, dataset, device, _no_progress, checkpoint)
    finally:
        _between_groups.set()


_between_groups = threading.Event()  # in a worker: set while no group trains (a checkpoint is not being written)
_between_groups.set()


def _no_progress(run_steps: int, resumed: bool = False) -> None:
    """Workers report when a group finishes, not within it."""


def make_executor(kind: str, jobs: int, address: str | None) -> Executor:
    """`jobs` workers (default for Ray: one per core of this machine, for a local Ray instance)."""
    if kind == "ray":
        return RayExecutor(address, jobs if jobs > 1 else os.cpu_count() or 1)
    if address:
        raise OverparamError("--address names a Ray cluster; add --executor ray")
    return LocalProcesses(jobs) if jobs > 1 else InProcess()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OverparamError("--executor ray needs Ray: pip install 'overparam[ray]' (or pip install ray)") from None
    return ray
