"""The selected outcome of one model (its tuned lr, per-seed curves) and the metrics read off it."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Literal

import torch

# final_batch_loss: the convnet's cross-entropy plus its L2 penalty, the batch loss the paper plots.
Metric = Literal["final_loss", "final_gap", "gap_ratio", "steps_to_gap", "final_batch_loss"]
# |L − L*| below this fraction of L* is rounding, not a result: L sums n rounded terms and L* is
# itself computed. Such gaps are shown and compared as 0 (two of them make no ratio).
ROUNDING = {"float64": 2.0**-40, "float32": 2.0**-16}


@dataclass(frozen=True)
class ModelResult:
    """One model at its chosen learning rate: a curve per seed, recorded at `steps`."""

    name: str
    lr: float | None  # None when every lr of the grid diverged
    seeds: list[int]
    steps: torch.Tensor  # (T,) the recorded step numbers
    losses: torch.Tensor  # (S, T) float64
    optimum: float  # L*
    end_to_end: torch.Tensor | None = None  # (S, T, d) W_e at the recorded steps, when recorded
    why_none: str = ""  # why no lr could be picked
    penalty: torch.Tensor | None = None  # (S, T) the convnet's L2 penalty term beside its cross-entropy
    resolution: float = 0.0  # gaps within this of 0 are rounding (ROUNDING × L*)

    @property
    def gaps(self) -> torch.Tensor:
        """L − L*, with gaps within rounding of 0 set to exactly 0."""
        gaps = self.losses - self.optimum
        return torch.where(gaps.abs() <= self.resolution, torch.zeros_like(gaps), gaps)

    def with_penalty(self) -> ModelResult:
        """The same runs with the penalty added to the loss: the convnet's batch loss, which the paper plots."""
        assert self.penalty is not None, "only runs that record a penalty have a batch loss"
        return replace(self, losses=self.losses + self.penalty)

    @property
    def at_optimum(self) -> bool:
        """Whether some recorded gap was within rounding of L* (the report says so)."""
        return bool(((self.losses - self.optimum).abs() <= self.resolution).any())


@dataclass(frozen=True)
class Results:
    """What checks read: each model at its picked lr, and at every lr of the grid."""

    picked: dict[str, ModelResult]
    by_lr: dict[str, dict[float, ModelResult]]

    def at(self, name: str, lr: float | None = None) -> ModelResult:
        return self.picked[name] if lr is None else self.by_lr[name][lr]


def metric_per_seed(result: ModelResult, metric: Metric, gap: float | None = None, at_step: int | None = None) -> list[float]:
    """The metric for every seed of `result` (inf for a gap never reached). `final_*` and
    `gap_ratio` (L − L* over its value at step 0) are read at `at_step` when given, else at the end."""
    column = -1 if at_step is None else int((result.steps == at_step).nonzero()[0, 0])
    if metric == "final_loss":
        return result.losses[:, column].tolist()
    if metric == "final_batch_loss":
        assert result.penalty is not None, "final_batch_loss needs a penalty term (the spec's rules admit it for convnet specs only)"
        return (result.losses[:, column] + result.penalty[:, column]).tolist()
    if metric == "final_gap":
        return result.gaps[:, column].tolist()
    if metric == "gap_ratio":
        return (result.gaps[:, column] / result.gaps[:, 0]).tolist()
    assert gap is not None, "steps_to_gap needs a gap threshold (the schema enforces it)"
    return [_first_step_below(row, result.steps, gap) for row in result.gaps]


def _first_step_below(gaps: torch.Tensor, steps: torch.Tensor, threshold: float) -> float:
    hits = (gaps <= threshold).nonzero()
    return float(steps[hits[0, 0]]) if len(hits) else math.inf


def max_rel_dev(a: torch.Tensor, b: torch.Tensor) -> float:
    """max_t |a_t − b_t| / |b_t| for curves (T,), or max_t ‖a_t − b_t‖ / ‖b_t‖ for vectors (T, d)."""
    if a.dim() == 1:
        return float(((a - b).abs() / b.abs()).max())
    return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max())


def median(values: list[float]) -> float:
    return float(statistics.median(values))
