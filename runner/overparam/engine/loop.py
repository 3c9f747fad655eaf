"""The full-batch step loop: one data pass per step for all runs, losses recorded sparsely."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from overparam.losses import lp_residual_grad, lp_value

DIVERGED_ABOVE = 1e100  # a loss this large never comes back: call the run diverged


class Model(Protocol):
    def end_to_end(self) -> torch.Tensor: ...
    def descend(self, g: torch.Tensor) -> None: ...
    def freeze(self, runs: torch.Tensor) -> None: ...


@dataclass
class Trace:
    """Losses at steps 0, k, 2k, …, steps (k = record_every); NaN after a run diverged."""

    losses: torch.Tensor  # (R, T) float64 on the CPU
    diverged_at: list[int | None]  # first recorded step with a non-finite or huge loss


def run_loop(
    model: Model,
    X: torch.Tensor,
    y: torch.Tensor,
    p: float,
    steps: int,
    record_every: int,
    on_progress: Callable[[int], None] = lambda done: None,
) -> Trace:
    """Train `model` for `steps` full-batch steps on ℓp; `on_progress` gets steps done so far."""
    records: list[torch.Tensor] = []
    runs = model.end_to_end().shape[0]
    diverged_at: list[int | None] = [None] * runs
    alive = torch.ones(runs, dtype=torch.bool, device=X.device)
    for step in range(steps + 1):
        w = model.end_to_end()  # (R, d)
        residual = torch.mm(w, X.T) - y  # (R, n)
        if step % record_every == 0:
            loss = lp_value(residual, p)
            bad = alive & ~(torch.isfinite(loss) & (loss < DIVERGED_ABOVE))
            if bool(bad.any()):
                for r in bad.nonzero().flatten().tolist():
                    diverged_at[r] = step
                alive &= ~bad
                model.freeze(bad)
            records.append(torch.where(alive, loss, torch.full_like(loss, float("nan"))).cpu())
            on_progress(step)
        if step == steps:
            break
        g = torch.mm(lp_residual_grad(residual, p), X)  # (R, d): ∇L¹ at W_e
        model.descend(g)
    losses = torch.stack(records, dim=1).to(torch.float64)
    return Trace(losses=losses, diverged_at=diverged_at)
