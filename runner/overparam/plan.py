"""Expand a spec into runs (model × lr × seed) and group the runs one batched program can share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from overparam.engine.init import Init
from overparam.engine.optim import Optimizer
from overparam.kinds.regression.models import ModelSpec
from overparam.kinds.regression.spec import RegressionSpec
from overparam.losses import LpLoss

# Bump when a change to the engine changes numbers: it invalidates the store. 3: groups padded to 4,
# MKL strict mode; 4: the ℓp factor p/n applied to the gradient, not the residual; 5: plain GD on
# the CPU in the fused C kernel; 6: every sum on the CPU in the C kernels (data pass, ℓ2 moments,
# backward chains, rule (12), warm-up form, AdaGrad/AdaDelta/Adam updates), the same on every CPU.
ENGINE_VERSION = "6"


class RunConfig(BaseModel):
    """Everything that determines a run's numbers besides the data, typed and frozen; a run's key
    hashes its canonical JSON with the data's fingerprint and the engine version. Each kind that
    trains runs has its own (the regression kind's is `LinearRunConfig`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def total_steps(self) -> int:
        raise NotImplementedError

    def memory_bytes(self, d: int) -> int:
        """About the most memory a run of this config holds in training on `d` features (weights,
        gradients, optimizer state, checkpoint copies, recorded curves): the estimate that refuses
        a spec before it trains rather than exhausting the machine in the middle of it."""
        return 0

    def key(self, data_fingerprint: str) -> str:
        blob = json.dumps({"config": self.model_dump(), "data": data_fingerprint, "engine": ENGINE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


class LinearRunConfig(RunConfig):
    """A regression run: a linear model (its kind's shape) on ℓp regression."""

    model: dict[str, Any]  # the model kind's shape (kinds/regression/models.py)
    init: Init
    loss: LpLoss
    optimizer: Optimizer
    lr: float
    seed: int
    steps: int
    record_every: int
    weight_decay: float
    dtype: Literal["float64", "float32"]
    record_end_to_end: bool

    def total_steps(self) -> int:
        return self.steps

    def memory_bytes(self, d: int) -> int:
        depth, width = int(self.model.get("depth", 2)), self.model.get("width") or d
        params = d if depth == 1 else d * width + width * width * (depth - 2) + width
        if self.model["kind"] == "end_to_end":
            params += d * d  # rule (10) moves W_e by matrix powers of d × d
        copies = 8  # weights, gradient, two optimizer slots, the checkpoint's copy, the kernels' work
        recorded = self.steps // self.record_every + 1
        itemsize = 8 if self.dtype == "float64" else 4
        return copies * itemsize * params + 8 * recorded * (1 + (d if self.record_end_to_end else 0))


@dataclass(frozen=True)
class Run:
    model: str  # the spec's model name (not part of the key: renaming reuses results)
    lr: float
    seed: int
    config: RunConfig
    key: str  # config.key(data fingerprint)

    @property
    def steps(self) -> int:
        return self.config.total_steps()

    @property
    def batch_key(self) -> str:
        """Runs that differ only in lr, seed and initial weights share one batched program
        (with a horizon schedule, runs at different lrs differ in steps and are batched apart)."""
        return json.dumps(self.config.model_dump(exclude={"lr", "seed", "init"}), sort_keys=True)

    @property
    def pass_key(self) -> str:
        """Runs that can share one pass over the data per step, whatever their model:
        the same loss, steps, recording schedule and dtype."""
        return json.dumps(self.config.model_dump(include=set(PASS_SHARED)), sort_keys=True)


PASS_SHARED = ("loss", "steps", "record_every", "dtype", "record_end_to_end")
# A pass over the data costs the same per run from about 48 runs up (bench/engine_speed.py), so
# packing beyond this only takes parallelism away from the executors.
MAX_SHARED_RUNS = 64


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


def grouped(runs: list[Run]) -> list[list[Run]]:
    """The programs to train, in first-seen order. Runs of one `batch_key` form one batched
    model; models with the same `pass_key` are packed into one program, which makes one pass
    over the data per step for all of them, as long as it stays within MAX_SHARED_RUNS runs."""
    shapes: dict[str, list[Run]] = {}
    for run in runs:
        shapes.setdefault(run.batch_key, []).append(run)
    programs: list[list[Run]] = []
    filling: dict[str, list[Run]] = {}  # the program each pass_key is adding to
    for shape in shapes.values():
        program = filling.get(shape[0].pass_key)
        if program is not None and len(program) + len(shape) <= MAX_SHARED_RUNS:
            program.extend(shape)
        else:
            program = list(shape)
            programs.append(program)
            filling[shape[0].pass_key] = program
    return programs
