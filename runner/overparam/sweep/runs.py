"""What a sweep reads besides its runs, each computed once per invocation (the session's memo):
its data, the exact optimum of ℓp on it, and its picks rerun on the one-ulp twin of the data."""

from __future__ import annotations

from pathlib import Path

import torch

from overparam.data import load_dataset
from overparam.data.dataset import Dataset
from overparam.losses import lp_optimum
from overparam.plan import Run
from overparam.results import ModelResult, Results
from overparam.session import RunFetcher, Session
from overparam.store import StoredRun
from overparam.sweep.plan import run_config
from overparam.sweep.select import model_result
from overparam.sweep.spec import RegressionSpec


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
