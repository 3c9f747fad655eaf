"""How a regression spec is verified: data → plan → store/train → lr picks → checks → report."""

from __future__ import annotations

import time
from pathlib import Path

from overparam.checks import evaluate
from overparam.data import load_dataset
from overparam.data.dataset import Dataset
from overparam.executors import jobs_for, train_jobs
from overparam.kind import Kind
from overparam.kinds.regression.report import regression_body, regression_panels
from overparam.kinds.regression.spec import RegressionSpec
from overparam.losses import lp_optimum
from overparam.plan import Run, plan_runs
from overparam.runs_report import ReportInputs, write_report
from overparam.select import select_models
from overparam.session import Options, Outcome, Progress, Session, stored_runs
from overparam.store import RunStore


def dataset_for(session: Session, spec: RegressionSpec, spec_path: Path, data_dir: Path | None) -> Dataset:
    """The spec's data, loaded once per invocation."""
    key = ("dataset", spec.data.model_dump_json(), str(data_dir or spec_path.parent))
    return session.memo(key, lambda: load_dataset(spec.data, spec_path, data_dir))


def optimum_for(session: Session, data: Dataset, p: float) -> float:
    """L* of ℓp regression on the data, computed once per invocation."""
    return session.memo(("optimum", data.fingerprint, p), lambda: lp_optimum(data.X, data.y, p)[1])


def verify(spec: RegressionSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    data = dataset_for(session, spec, spec_path, options.data_dir)
    runs = plan_runs(spec, data.fingerprint)

    def train(todo: list[Run], store: RunStore) -> None:
        jobs = jobs_for(todo, data)
        train_jobs(jobs, session.executor, store, options.device, progress.advance, options.checkpoints(jobs))

    stored, trained = stored_runs(spec.id, runs, options, progress, train)
    optima = {p: optimum_for(session, data, p) for p in spec.exponents}
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
    report = write_report(inputs, options.reports, regression_panels(inputs), regression_body(inputs))
    return Outcome(spec, checks, report, trained, len(runs) - trained, wall_s)


KIND = Kind("regression", RegressionSpec, verify)
