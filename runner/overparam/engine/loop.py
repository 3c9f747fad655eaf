"""The full-batch step loop: one data pass per step for all runs, losses recorded sparsely."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from overparam.engine.kernel import FusedKernel
from overparam.losses import lp_residual_power_, lp_value

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
    end_to_end: torch.Tensor | None = None  # (R, T, d) W_e at the same steps, when asked for


class Objective(Protocol):
    def __call__(self, w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]: ...


class DataPass:
    """ℓp through the data: r = Xw − y, L = mean |r|^p, ∇L¹ = Xᵀ ∂L/∂r. Two passes over X per step;
    the n-sized work in between happens in place, on one buffer."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, p: float) -> None:
        self.X, self.y, self.p = X, y, p
        self.scale = p / X.shape[0]  # ∂L/∂r = (p/n)·|r|^{p−1}·sign(r)

    def __call__(self, w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        residual = torch.mm(w, self.X.T).sub_(self.y)  # (R, n)
        loss = lp_value(residual, self.p) if with_loss else None
        return loss, torch.mm(lp_residual_power_(residual, self.p), self.X).mul_(self.scale)  # (R, d)


class Gram:
    """ℓ2 needs only the moments: L = wᵀGw − 2wᵀb + c, ∇L¹ = 2(Gw − b) with G = XᵀX/n, b = Xᵀy/n,
    c = yᵀy/n: O(d²) per step instead of O(nd)."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        n = X.shape[0]
        # On one thread: MKL's reproducible mode does not cover matrix-vector products, and the
        # moments must not depend on how many threads this process has (it may be a worker).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.G = X.T @ X / n  # (d, d)
            self.b = X.T @ y / n  # (d,)
            self.c = y @ y / n
        finally:
            torch.set_num_threads(threads)

    def __call__(self, w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        Gw = torch.mm(w, self.G)  # (R, d), G symmetric
        loss = ((Gw - 2.0 * self.b) * w).sum(dim=1) + self.c if with_loss else None
        return loss, 2.0 * (Gw - self.b)


def objective_for(X: torch.Tensor, y: torch.Tensor, p: float, kernel: FusedKernel | None = None) -> Objective:
    """The cheapest exact way to evaluate ℓp and its gradient on this data: in the kernel where
    it takes the data (its sums have one order on every CPU), else in torch ops."""
    owned = kernel.objective(X, y, p) if kernel is not None else None
    if owned is not None:
        return owned
    return Gram(X, y) if p == 2.0 and X.shape[0] > X.shape[1] else DataPass(X, y, p)


def run_loop(
    model: Model,
    X: torch.Tensor,
    y: torch.Tensor,
    p: float,
    steps: int,
    record_every: int,
    on_progress: Callable[[int], None] = lambda done: None,
    record_end_to_end: bool = False,
    kernel: FusedKernel | None = None,
) -> Trace:
    """Train `model` for `steps` full-batch steps on ℓp; `on_progress` gets steps done so far.
    With a `kernel`, the pass over the data runs in it."""
    objective = objective_for(X, y, p, kernel)
    runs, d = model.end_to_end().shape
    # Preallocated: small tensors kept alive between the step's large temporaries fragment the
    # heap, and memory then grows with the step count (≈6 KB a step at 48 runs).
    recorded = steps // record_every + 1
    losses = torch.empty(runs, recorded, dtype=torch.float64)
    end_to_end = torch.empty(runs, recorded, d, dtype=torch.float64) if record_end_to_end else None
    diverged_at: list[int | None] = [None] * runs
    alive = torch.ones(runs, dtype=torch.bool, device=X.device)
    for step in range(steps + 1):
        w = model.end_to_end()  # (R, d)
        recording = step % record_every == 0
        loss, g = objective(w, recording)
        if recording:
            assert loss is not None
            bad = alive & ~(torch.isfinite(loss) & (loss < DIVERGED_ABOVE))
            if bool(bad.any()):
                for r in bad.nonzero().flatten().tolist():
                    diverged_at[r] = step
                alive &= ~bad
                model.freeze(bad)
            losses[:, step // record_every] = torch.where(alive, loss, torch.full_like(loss, float("nan")))
            if end_to_end is not None:
                end_to_end[:, step // record_every] = w
            on_progress(step)
        if step == steps:
            break
        model.descend(g)
    return Trace(losses=losses, diverged_at=diverged_at, end_to_end=end_to_end)
