"""How a regression spec is verified: data → plan → store/train → lr picks → checks → report."""

from __future__ import annotations

import time
from pathlib import Path

from overparam.checks import evaluate
from overparam.data.dataset import one_ulp_up
from overparam.evidence import assessed, read_lrs
from overparam.kind import Kind
from overparam.kinds.regression.report import regression_body, regression_caption, regression_panels
from overparam.runs_report import ReportInputs, write_report
from overparam.session import Options, Outcome, Progress, RunFetcher, Session
from overparam.sweep.plan import plan_runs
from overparam.sweep.refine import Tuning, edge_warnings, tune
from overparam.sweep.runs import dataset_for, optimum_for, twin_results
from overparam.sweep.spec import RegressionSpec
from overparam.sweep.train import DTYPES, train_group


def verify(spec: RegressionSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    data = dataset_for(session, spec, spec_path, options.data_dir)
    runs = plan_runs(spec, data.fingerprint)
    fetcher = RunFetcher(options, session, progress, train_group)
    stored = fetcher.fetch(spec.id, runs, lambda _: data)
    optima = {p: optimum_for(session, data, p) for p in spec.exponents}
    tuning = Tuning(spec, data, list(runs), optima)
    tune([tuning], fetcher, f"{spec.id} (refining the lrs)", stored)
    assert tuning.results is not None and tuning.sweeps is not None
    runs, results, sweeps = tuning.runs, tuning.results, tuning.sweeps
    targets = {(name, lr) for check in spec.checks for name, lr in read_lrs(check, results.picked).items()}
    twins, twin_runs = twin_results(spec, results, sorted(targets), one_ulp_up(data, DTYPES[spec.train.dtype]), fetcher, optima)
    checks = [assessed(check, evaluate(check, results), results, sweeps, twins) for check in spec.checks]
    warnings = edge_warnings(spec, results, sweeps)
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
        stored=[stored[r.key] for r in runs] + twin_runs,
        trained=fetcher.trained,
        wall_s=wall_s,
        device=options.device,
        warnings=warnings,
    )
    panels = regression_panels(inputs)
    report = write_report(inputs, options.reports, panels, regression_caption(panels), regression_body(inputs))
    return Outcome(spec, checks, report, fetcher.trained, len(runs) + len(twin_runs) - fetcher.trained, wall_s, warnings)


KIND = Kind("regression", RegressionSpec, verify)
