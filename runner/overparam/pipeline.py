"""One claim end to end: spec → data → plan → store/engine → lr selection → checks → report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from overparam.checks import CheckResult, evaluate
from overparam.data import load_dataset
from overparam.dataset import Dataset
from overparam.execute import train_runs
from overparam.losses import lp_optimum
from overparam.plan import plan_runs
from overparam.report import ReportInputs, write_report
from overparam.select import select_models
from overparam.spec import Spec, load_spec
from overparam.store import RunStore


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


@dataclass
class Session:
    """What one CLI invocation shares across specs: loaded data and exact optima."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    optima: dict[tuple[str, float], float] = field(default_factory=dict)

    def dataset(self, spec: Spec, spec_path: Path, data_dir: Path | None) -> Dataset:
        key = spec.data.model_dump_json() + str(data_dir or spec_path.parent)
        if key not in self.datasets:
            self.datasets[key] = load_dataset(spec.data, spec_path, data_dir)
        return self.datasets[key]

    def optimum(self, data: Dataset, p: float) -> float:
        if (data.fingerprint, p) not in self.optima:
            self.optima[data.fingerprint, p] = lp_optimum(data.X, data.y, p)[1]
        return self.optima[data.fingerprint, p]


@dataclass(frozen=True)
class Outcome:
    spec: Spec
    checks: list[CheckResult]
    report: Path
    trained: int
    cached: int
    wall_s: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def verify(spec_path: Path, options: Options, session: Session, progress: Progress) -> Outcome:
    start = time.perf_counter()
    spec = load_spec(spec_path, options.profile)
    data = session.dataset(spec, spec_path, options.data_dir)
    optima = {p: session.optimum(data, p) for p in spec.exponents}
    runs = plan_runs(spec, data.fingerprint)
    store = RunStore(options.store)
    try:
        cached = {} if options.fresh else store.get([r.key for r in runs])
        todo = [r for r in runs if r.key not in cached]
        progress.begin(spec.id, len(todo), sum(r.steps for r in todo))
        try:
            train_runs(todo, data, store, options.device, progress.advance)
        finally:
            progress.end()
        stored = store.get([r.key for r in runs])
    finally:
        store.close()
    results, sweeps = select_models(spec, runs, stored, optima)
    checks = [evaluate(check, results) for check in spec.checks]
    wall_s = time.perf_counter() - start
    inputs = ReportInputs(
        spec=spec,
        spec_path=spec_path,
        profile=options.profile,
        data=data,
        optima=optima,
        results=results,
        sweeps=sweeps,
        checks=checks,
        stored=[stored[r.key] for r in runs],
        trained=len(todo),
        wall_s=wall_s,
        device=options.device,
    )
    report = write_report(inputs, options.reports)
    return Outcome(spec, checks, report, len(todo), len(runs) - len(todo), wall_s)
