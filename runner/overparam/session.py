"""What the pipeline hands every experiment kind: the command's options, the session's caches
(data loaded once per invocation, exact optima), a progress display, and the run store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from overparam.checkpoint import DEFAULT_EVERY_S, Checkpoints
from overparam.checks import CheckResult
from overparam.claim import Claim
from overparam.executors import Executor, InProcess, Job
from overparam.plan import Run
from overparam.store import RunStore, StoredRun

T = TypeVar("T")


class Progress(Protocol):
    def begin(self, label: str, runs: int, run_steps: int) -> None: ...
    def advance(self, run_steps: int) -> None: ...
    def end(self) -> None: ...


@dataclass(frozen=True)
class Options:
    store: Path
    reports: Path
    profile: str | None = None
    device: str = "cpu"
    data_dir: Path | None = None
    fresh: bool = False
    checkpoint_every_s: float = DEFAULT_EVERY_S

    def checkpoints(self, jobs: list[Job]) -> Checkpoints:
        """Checkpoints for these groups beside the store; --fresh drops the ones they had."""
        checkpoints = Checkpoints.beside(self.store, self.checkpoint_every_s)
        if self.fresh:
            for job in jobs:
                checkpoints.discard([run.key for run in job.runs])
        return checkpoints


@dataclass
class Session:
    """What one CLI invocation shares across specs: where runs train, and anything computed once
    (datasets, optima), keyed by what determines it."""

    executor: Executor = field(default_factory=InProcess)  # where runs train (--jobs, --executor)
    _memo: dict[Any, Any] = field(default_factory=dict)

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()`, once per key per invocation."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]  # what compute() returned for this key


@dataclass(frozen=True)
class Outcome:
    spec: Claim
    checks: list[CheckResult]
    report: Path
    trained: int
    cached: int
    wall_s: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def stored_runs(
    label: str, runs: list[Run], options: Options, progress: Progress, train: Callable[[list[Run], RunStore], None]
) -> tuple[dict[str, StoredRun], int]:
    """Every planned run from the store, training the missing ones (all of them with --fresh) first."""
    store = RunStore(options.store)
    try:
        cached = {} if options.fresh else store.get([r.key for r in runs])
        todo = [r for r in runs if r.key not in cached]
        progress.begin(label, len(todo), sum(r.steps for r in todo))
        try:
            train(todo, store)
        finally:
            progress.end()
        return store.get([r.key for r in runs]), len(todo)
    finally:
        store.close()
