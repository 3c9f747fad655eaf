"""A regression spec expanded into its runs: model × lr × seed."""

from __future__ import annotations

from overparam.plan import Run
from overparam.sweep.config import LinearRunConfig
from overparam.sweep.models import ModelSpec
from overparam.sweep.spec import RegressionSpec


def plan_runs(spec: RegressionSpec, data_fingerprint: str) -> list[Run]:
    runs = []
    for model in spec.models:
        for lr in spec.lr_grid(model.name):
            for seed in spec.seeds:
                config = run_config(spec, model, lr, seed)
                runs.append(Run(model.name, lr, seed, config, config.key(data_fingerprint)))
    return runs


def run_config(spec: RegressionSpec, model: ModelSpec, lr: float, seed: int) -> LinearRunConfig:
    steps, record_every = spec.train.schedule(lr)
    return LinearRunConfig(
        model=model.shape(),
        init=model.init or spec.train.init,
        loss=spec.loss_of(model.name),
        optimizer=model.optimizer_of(spec.train.optimizer),
        lr=lr,
        seed=seed,
        steps=steps,
        record_every=record_every,
        weight_decay=spec.train.weight_decay,
        dtype=spec.train.dtype,
        record_end_to_end=spec.train.record_end_to_end,
    )
