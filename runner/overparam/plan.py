"""What a run is, whatever trains it (its config, hashed into its key, and the engine version), and
how runs are grouped into the batched programs that train them together. Each kind that trains
runs has its own RunConfig (the lr sweeps': sweep/config.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

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
    # Whether runs that differ only in lr, seed and init train as one batched program; a run that
    # is already one program of its own (the convnet's) is a group alone, so groups spread over workers.
    batchable: ClassVar[bool] = True

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


def grouped(runs: list[Run]) -> list[list[Run]]:
    """The programs to train, in first-seen order. Runs of one `batch_key` form one batched
    model; models with the same `pass_key` are packed into one program, which makes one pass
    over the data per step for all of them, as long as it stays within MAX_SHARED_RUNS runs.
    A run whose config is not batchable is a program alone."""
    shapes: dict[str, list[Run]] = {}
    for run in runs:
        shapes.setdefault(run.batch_key if run.config.batchable else run.key, []).append(run)
    programs: list[list[Run]] = []
    filling: dict[str, list[Run]] = {}  # the program each pass_key is adding to
    for shape in shapes.values():
        if not shape[0].config.batchable:
            programs.append(shape)
            continue
        program = filling.get(shape[0].pass_key)
        if program is not None and len(program) + len(shape) <= MAX_SHARED_RUNS:
            program.extend(shape)
        else:
            program = list(shape)
            programs.append(program)
            filling[shape[0].pass_key] = program
    return programs
