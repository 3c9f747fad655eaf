"""Expand a spec into runs (model × lr × seed) and group the runs one batched program can share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from overparam.kinds.regression.models import ModelSpec
from overparam.kinds.regression.spec import Spec

# Bump when a change to the engine changes numbers: it invalidates the store. 3: groups padded to 4,
# MKL strict mode; 4: the ℓp factor p/n applied to the gradient, not the residual; 5: plain GD on
# the CPU in the fused C kernel; 6: every sum on the CPU in the C kernels (data pass, ℓ2 moments,
# backward chains, rule (12), warm-up form, AdaGrad/AdaDelta/Adam updates), the same on every CPU.
ENGINE_VERSION = "6"


@dataclass(frozen=True)
class Run:
    model: str  # the spec's model name (not part of the key: renaming reuses results)
    lr: float
    seed: int
    config: dict[str, Any]  # everything that determines the numbers, besides the data
    key: str  # hash of config + data fingerprint + engine version

    @property
    def steps(self) -> int:
        return int(self.config["steps"] if "steps" in self.config else self.config["train"]["steps"])

    @property
    def batch_key(self) -> str:
        """Runs that differ only in lr, seed and initial weights share one batched program
        (with a horizon schedule, runs at different lrs differ in steps and are batched apart)."""
        shared = {k: v for k, v in self.config.items() if k not in ("lr", "seed", "init")}
        return json.dumps(shared, sort_keys=True)

    @property
    def pass_key(self) -> str:
        """Runs that can share one pass over the data per step, whatever their model:
        the same loss, steps, recording schedule and dtype."""
        shared = {k: v for k, v in self.config.items() if k in PASS_SHARED}
        return json.dumps(shared, sort_keys=True)


PASS_SHARED = ("loss", "steps", "record_every", "dtype", "record_end_to_end")
# A pass over the data costs the same per run from about 48 runs up (bench/engine_speed.py), so
# packing beyond this only takes parallelism away from the executors.
MAX_SHARED_RUNS = 64


def plan_runs(spec: Spec, data_fingerprint: str) -> list[Run]:
    runs = []
    for model in spec.models:
        for lr in spec.lr_grid(model.name):
            for seed in spec.seeds:
                config = run_config(spec, model, lr, seed)
                runs.append(Run(model.name, lr, seed, config, run_key(config, data_fingerprint)))
    return runs


def run_config(spec: Spec, model: ModelSpec, lr: float, seed: int) -> dict[str, Any]:
    init = model.init or spec.train.init
    steps, record_every = spec.train.schedule(lr)
    return {
        "model": model.shape(),
        "init": init.model_dump(),
        "loss": spec.loss_of(model.name).model_dump(),
        "optimizer": model.optimizer_of(spec.train.optimizer).model_dump(),
        "lr": lr,
        "seed": seed,
        "steps": steps,
        "record_every": record_every,
        "weight_decay": spec.train.weight_decay,
        "dtype": spec.train.dtype,
        "record_end_to_end": spec.train.record_end_to_end,
    }


def run_key(config: dict[str, Any], data_fingerprint: str) -> str:
    blob = json.dumps({"config": config, "data": data_fingerprint, "engine": ENGINE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


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
