"""A regression run's config: everything that determines its numbers besides the data."""

from __future__ import annotations

from typing import Any, Literal

from overparam.engine.init import Init
from overparam.engine.optim import Optimizer
from overparam.losses import LpLoss
from overparam.plan import RunConfig


class LinearRunConfig(RunConfig):
    """A regression run: a linear model (its kind's shape) on ℓp regression."""

    model: dict[str, Any]  # the model kind's shape (sweep/models.py)
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
