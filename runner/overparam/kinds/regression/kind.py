"""How a regression spec is verified: data → plan → store/train → lr picks → checks → report."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from overparam.checks import evaluate
from overparam.data import load_dataset
from overparam.data.dataset import Dataset, one_ulp_up
from overparam.evidence import assessed, read_lrs
from overparam.kind import Kind
from overparam.kinds.regression.report import regression_body, regression_caption, regression_panels
from overparam.kinds.regression.spec import RegressionSpec
from overparam.losses import lp_optimum
from overparam.plan import Run, plan_runs, run_config
from overparam.refine import Tuning, edge_warnings, tune
from overparam.results import ModelResult, Results
from overparam.runs_report import ReportInputs, write_report
from overparam.select import model_result
from overparam.session import Options, Outcome, Progress, RunFetcher, Session
from overparam.store import StoredRun
from overparam.trainer import DTYPES


def dataset_for(session: Session, spec: RegressionSpec, spec_path: Path, data_dir: Path | None) -> Dataset:
    """The spec's data, loaded once per invocation."""
    key = ("dataset", spec.data.model_dump_json(), str(data_dir or spec_path.parent))
    return session.memo(key, lambda: load_dataset(spec.data, spec_path, data_dir))


def optimum_for(session: Session, data: Dataset, p: float) -> float:
    """L* of ℓp regression on the data, computed once per invocation."""
    return optimum_point_for(session, data, p)[1]


def optimum_point_for(session: Session, data: Dataset, p: float) -> tuple[torch.Tensor, float]:
    """(w*, L*) of ℓp regression on the data, computed once per invocation."""
    point: tuple[torch.Tensor, float] = session.memo(("optimum", data.fingerprint, p), lambda: lp_optimum(data.X, data.y, p))
    return point


def verify(spec: RegressionSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    data = dataset_for(session, spec, spec_path, options.data_dir)
    runs = plan_runs(spec, data.fingerprint)
    fetcher = RunFetcher(options, session, progress)
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


def twin_results(
    spec: RegressionSpec,
    results: Results,
    targets: list[tuple[str, float]],
    twin_data: Dataset,
    fetcher: RunFetcher,
    optima: dict[float, float],
) -> tuple[Results, list[StoredRun]]:
    """Each (model, lr) of `targets` rerun on the one-ulp twin of the data (keyed by its
    fingerprint), as Results checks can read (a model not rerun stays as it was); and those runs.
    The twins' L* is taken as the data's: it moves by ~1e-16 relative, below the gaps' rounding floor."""
    runs = []
    for name, lr in targets:
        for seed in spec.seeds:
            config = run_config(spec, spec.model(name), lr, seed)
            runs.append(Run(name, lr, seed, config, config.key(twin_data.fingerprint)))
    stored = fetcher.fetch(f"{spec.id} (one-ulp twins)", runs, lambda run: twin_data)
    by_lr: dict[str, dict[float, ModelResult]] = {}
    for name, lr in targets:
        seed_runs = [stored[run.key] for run in runs if (run.model, run.lr) == (name, lr)]
        by_lr.setdefault(name, {})[lr] = model_result(name, lr, spec, seed_runs, optima[spec.loss_of(name).p])
    picked = dict(results.picked)
    for name, lr in targets:
        if lr == picked[name].lr:
            picked[name] = by_lr[name][lr]
    return Results(picked, by_lr), [stored[run.key] for run in runs]


KIND = Kind("regression", RegressionSpec, verify)
