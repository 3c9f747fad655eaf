"""What the pipeline hands every experiment kind: the command's options, the session's caches
(data loaded once per invocation, exact optima), a progress display, and the run store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from overparam.checkpoint import DEFAULT_EVERY_S, Checkpoints
from overparam.checks import CheckResult
from overparam.claim import Claim, Judgement
from overparam.data.dataset import Dataset
from overparam.errors import OverparamError
from overparam.executors import Executor, GroupTrainer, InProcess, jobs_for, train_jobs
from overparam.plan import Run
from overparam.store import RunStore, StoredRun

T = TypeVar("T")


class Progress(Protocol):
    def begin(self, label: str, runs: int, run_steps: int) -> None: ...
    def advance(self, run_steps: int, resumed: bool = False) -> None: ...
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
    stored_only: bool = False  # report from the store alone: a missing run is an error, not a training job

    def checkpoints(self, groups: list[list[Run]]) -> Checkpoints:
        """Checkpoints for these groups of runs beside the store; --fresh drops the ones they had."""
        checkpoints = Checkpoints.beside(self.store, self.checkpoint_every_s)
        if self.fresh:
            for group in groups:
                checkpoints.discard([run.key for run in group])
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
    warnings: list[str] = field(default_factory=list)  # for stderr: e.g. a pick at the edge of its grid
    untraced: tuple[str, ...] = ()  # numbers the verdict's prose types that the report's tables do not print
    located: dict[int, str] = field(default_factory=dict)  # check index -> `file:line:col` where the spec states it

    @property
    def judgement(self) -> Judgement:
        return self.spec.judge(self.checks, self.untraced)

    @property
    def passed(self) -> bool:
        """Whether the spec's stated verdict is current: its statements decide it, every observation
        holds and every number its prose types is one the report prints (Verdict.judge)."""
        return self.judgement.current


@dataclass
class RunFetcher:
    """Runs from the store, training the missing ones with `train` where the session says, each on
    its data; counts how many it trained over the invocation of one spec."""

    options: Options
    session: Session
    progress: Progress
    train: GroupTrainer
    trained: int = 0

    def fetch(self, label: str, runs: list[Run], data_of: Callable[[Run], Dataset]) -> dict[str, StoredRun]:
        def train(todo: list[Run], store: RunStore) -> None:
            by_data: dict[str, list[Run]] = {}
            for run in todo:
                by_data.setdefault(data_of(run).fingerprint, []).append(run)
            jobs = [job for group in by_data.values() for job in jobs_for(group, data_of(group[0]), self.train)]
            options = self.options
            train_jobs(jobs, self.session.executor, store, options.device, self.progress.advance, options.checkpoints([job.runs for job in jobs]))

        found, count = stored_runs(label, runs, self.options, self.progress, train)
        self.trained += count
        return found


def stored_runs(
    label: str, runs: list[Run], options: Options, progress: Progress, train: Callable[[list[Run], RunStore], None]
) -> tuple[dict[str, StoredRun], int]:
    """Every planned run from the store, training the missing ones (all of them with --fresh) first;
    with --stored-only a missing run is an error naming how many, and nothing trains."""
    store = RunStore(options.store, read_only=options.stored_only)
    try:
        cached = {} if options.fresh else store.get([r.key for r in runs])
        todo = [r for r in runs if r.key not in cached]
        if todo and options.stored_only:
            raise OverparamError(
                f"{options.store}: {len(todo)} of the {len(runs)} runs {label} needs are not in this run store"
                " (--stored-only trains nothing); rerun without --stored-only to train them"
            )
        progress.begin(label, len(todo), sum(r.steps for r in todo))
        try:
            train(todo, store)
        finally:
            progress.end()
        return store.get([r.key for r in runs]), len(todo)
    finally:
        store.close()
