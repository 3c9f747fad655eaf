"""One claim end to end: spec → data → plan → store/engine → lr selection → checks → report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from overparam import provenance
from overparam.checkpoint import DEFAULT_EVERY_S, Checkpoints
from overparam.checks import CheckResult, evaluate
from overparam.convnet_runs import convnet_results, plan_convnet_runs, train_convnet_runs
from overparam.convnet_spec import ConvnetSpec
from overparam.data import load_dataset
from overparam.dataset import Dataset
from overparam.executors import Executor, InProcess, Job, jobs_for, train_jobs
from overparam.losses import lp_optimum
from overparam.mnist import load_mnist
from overparam.plan import Run, plan_runs
from overparam.report import ReportInputs, write_report
from overparam.select import select_models
from overparam.spec import Spec
from overparam.specload import AnySpec, load_spec
from overparam.store import RunStore, StoredRun
from overparam.sweep import RowResult, evaluate_region, map_cells
from overparam.sweep_report import SweepInputs, write_sweep_report
from overparam.sweep_spec import SweepSpec
from overparam.theory_report import write_theory_report
from overparam.theory_run import evaluate_value, run_probe
from overparam.theory_spec import TheorySpec


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
    """What one CLI invocation shares across specs: loaded data and exact optima."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    optima: dict[tuple[str, float], float] = field(default_factory=dict)
    images: dict[str, tuple[torch.Tensor, torch.Tensor, Dataset]] = field(default_factory=dict)
    executor: Executor = field(default_factory=InProcess)  # where regression runs train (--jobs, --executor)

    def mnist(self, spec: ConvnetSpec, spec_path: Path) -> tuple[torch.Tensor, torch.Tensor, Dataset]:
        """Images, labels, and their description as a Dataset (flattened pixels) for the report.
        (--data-dir names the UCI folder; MNIST comes from data.path or OVERPARAM_MNIST.)"""
        folder = (spec_path.parent / spec.data.path) if spec.data.path else None
        key = f"mnist:{spec.data.split}:{folder}"
        if key not in self.images:
            images, labels, fingerprint = load_mnist(spec.data, folder)
            details = {"split": f"{spec.data.split} ({images.shape[0]} images)", "preprocessing": "pixels scaled to [−0.5, 0.5]"}
            self.images[key] = (images, labels, Dataset(images.flatten(1), labels, fingerprint, f"MNIST {spec.data.split} split", details))
        return self.images[key]

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
    spec: AnySpec
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
    provenance.git_commit(spec_path.resolve().parent)  # pin the commit before anything trains
    spec = load_spec(spec_path, options.profile)
    if isinstance(spec, TheorySpec):
        return _verify_theory(spec, spec_path, options, start)
    if isinstance(spec, SweepSpec):
        return _verify_sweep(spec, spec_path, options, session, progress, start)
    if isinstance(spec, ConvnetSpec):
        images, labels, data = session.mnist(spec, spec_path)
        runs = plan_convnet_runs(spec, data.fingerprint)

        def train(todo: list[Run], store: RunStore) -> None:
            train_convnet_runs(todo, images, labels, store, options.device, progress.advance)
    else:
        data = session.dataset(spec, spec_path, options.data_dir)
        runs = plan_runs(spec, data.fingerprint)

        def train(todo: list[Run], store: RunStore) -> None:
            jobs = jobs_for(todo, data)
            train_jobs(jobs, session.executor, store, options.device, progress.advance, options.checkpoints(jobs))

    stored, trained = _stored_runs(spec.id, runs, options, progress, train)
    if isinstance(spec, ConvnetSpec):
        results, sweeps, optima = convnet_results(spec, runs, stored), {}, {}
    else:
        optima = {p: session.optimum(data, p) for p in spec.exponents}
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
        trained=trained,
        wall_s=wall_s,
        device=options.device,
    )
    report = write_report(inputs, options.reports)
    return Outcome(spec, checks, report, trained, len(runs) - trained, wall_s)


def _verify_theory(spec: TheorySpec, spec_path: Path, options: Options, start: float) -> Outcome:
    """Probes run in seconds: no store, no progress bar; one probe per seed."""
    results = [run_probe(spec.probe, seed) for seed in spec.seeds]
    checks = [evaluate_value(check, results, spec.seeds) for check in spec.checks]
    wall_s = time.perf_counter() - start
    report = write_theory_report(spec, spec_path, options.profile, results, checks, wall_s, options.reports)
    return Outcome(spec, checks, report, 0, 0, wall_s)


def _verify_sweep(spec: SweepSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    """Every row of the map is a regression spec; all rows' runs go to the executor at once."""
    rows = {level.name(spec.rows.axis): spec.row_spec(level) for level in spec.rows.levels}
    data = {name: session.dataset(row, spec_path, options.data_dir) for name, row in rows.items()}
    planned = {name: plan_runs(row, data[name].fingerprint) for name, row in rows.items()}
    unique = list({run.key: run for runs in planned.values() for run in runs}.values())  # rows may share runs
    data_of = {run.key: data[name] for name, runs in planned.items() for run in runs}

    def train(todo: list[Run], store: RunStore) -> None:
        by_data: dict[str, list[Run]] = {}
        for run in todo:
            by_data.setdefault(data_of[run.key].fingerprint, []).append(run)
        jobs = [job for runs in by_data.values() for job in jobs_for(runs, data_of[runs[0].key])]
        train_jobs(jobs, session.executor, store, options.device, progress.advance, options.checkpoints(jobs))

    stored, trained = _stored_runs(spec.id, unique, options, progress, train)
    results = []
    for name, row in rows.items():
        optima = {p: session.optimum(data[name], p) for p in row.exponents}
        results.append(RowResult(name, select_models(row, planned[name], stored, optima)[0]))
    cells = map_cells(spec, results)
    checks = [evaluate_region(check, spec, cells) for check in spec.checks]
    wall_s = time.perf_counter() - start
    stored_runs = [stored[r.key] for r in unique]
    inputs = SweepInputs(spec, spec_path, options.profile, rows, data, cells, checks, stored_runs, trained, wall_s, options.device)
    report = write_sweep_report(inputs, options.reports)
    return Outcome(spec, checks, report, trained, len(unique) - trained, wall_s)


def _stored_runs(
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
