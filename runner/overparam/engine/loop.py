"""The full-batch step loop: one data pass per step for all runs, losses recorded sparsely."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from overparam.checkpoint import CheckpointedInterrupt, GroupCheckpoint
from overparam.engine.kernel import FusedKernel
from overparam.losses import lp_residual_power_, lp_value

DIVERGED_ABOVE = 1e100  # a loss this large never comes back: call the run diverged


class Model(Protocol):
    def end_to_end(self) -> torch.Tensor: ...
    def descend(self, g: torch.Tensor) -> None: ...
    def freeze(self, runs: torch.Tensor) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def load(self, state: dict[str, Any]) -> None: ...


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
    checkpoint: GroupCheckpoint | None = None,
) -> Trace:
    """Train `model` for `steps` full-batch steps on ℓp; `on_progress` gets steps done so far.
    With a `kernel`, the pass over the data runs in it. With a `checkpoint`, the loop starts from
    its saved state if there is one, saves its state whenever one is due, and on Ctrl-C saves
    before raising CheckpointedInterrupt."""
    objective = objective_for(X, y, p, kernel)
    runs, d = model.end_to_end().shape
    # Preallocated: small tensors kept alive between the step's large temporaries fragment the
    # heap, and memory then grows with the step count (≈6 KB a step at 48 runs).
    recorded = steps // record_every + 1
    trace = Trace(
        losses=torch.empty(runs, recorded, dtype=torch.float64),
        diverged_at=[None] * runs,
        end_to_end=torch.empty(runs, recorded, d, dtype=torch.float64) if record_end_to_end else None,
    )
    alive = torch.ones(runs, dtype=torch.bool, device=X.device)
    saved = checkpoint.load() if checkpoint is not None else None
    start = _resume(saved, model, trace, alive) if saved is not None else 0
    survivors = _survivors(alive)
    with checkpoint.deferring_interrupts() if checkpoint is not None else contextlib.nullcontext():
        for step in range(start, steps + 1):
            if checkpoint is not None and step > start and checkpoint.due():
                checkpoint.save(
                    {"step": step, "model": model.state(), "trace": _recorded_so_far(trace, step, record_every), "alive": alive}
                )
                if checkpoint.interrupted:
                    raise CheckpointedInterrupt(f"its checkpoint is at step {step:,} of {steps:,} ({checkpoint.path})", checkpoint.signum)
            w = model.end_to_end()  # (R, d)
            recording = step % record_every == 0
            loss, g = objective(w, recording) if survivors is None else _on_rows(objective, w, survivors, recording)
            if recording:
                assert loss is not None
                _record(trace, model, alive, loss, w, step, record_every)
                survivors = _survivors(alive)
                on_progress(step)
            if step == steps:
                break
            model.descend(g)
    return trace


def _survivors(alive: torch.Tensor) -> torch.Tensor | None:
    """The rows of the runs still alive, or None while all are (found at records only: no device
    sync between them)."""
    return None if bool(alive.all()) else alive.nonzero().flatten()


def _on_rows(objective: Objective, w: torch.Tensor, rows: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The objective on the runs `rows` only, shaped as if on all. The others have diverged and
    are parked with lr 0 (freeze): their loss is never recorded (NaN here) and their gradient
    (zero here) never moves them. The pass over the data is most of a step's cost, and a grid that
    brackets the stability edge diverges in some runs early (≈12% of the default profile's
    run-steps come after a divergence). A kernel run's numbers do not depend on the runs beside it."""
    loss_alive, g_alive = objective(w.index_select(0, rows), with_loss)
    g = torch.zeros_like(w).index_copy_(0, rows, g_alive)
    if loss_alive is None:
        return None, g
    loss = torch.full((w.shape[0],), float("nan"), dtype=loss_alive.dtype, device=w.device)
    return loss.index_copy_(0, rows, loss_alive), g


def _record(trace: Trace, model: Model, alive: torch.Tensor, loss: torch.Tensor, w: torch.Tensor, step: int, record_every: int) -> None:
    """Record step's losses (and W_e); freeze the runs that just diverged."""
    bad = alive & ~(torch.isfinite(loss) & (loss < DIVERGED_ABOVE))
    if bool(bad.any()):
        for r in bad.nonzero().flatten().tolist():
            trace.diverged_at[r] = step
        alive &= ~bad
        model.freeze(bad)
    trace.losses[:, step // record_every] = torch.where(alive, loss, torch.full_like(loss, float("nan")))
    if trace.end_to_end is not None:
        trace.end_to_end[:, step // record_every] = w


def _recorded_so_far(trace: Trace, step: int, record_every: int) -> dict[str, Any]:
    """What the trace holds before `step` (records at steps < step)."""
    done = (step - 1) // record_every + 1
    vectors = trace.end_to_end[:, :done].clone() if trace.end_to_end is not None else None
    return {"losses": trace.losses[:, :done].clone(), "end_to_end": vectors, "diverged_at": list(trace.diverged_at)}


def _resume(saved: dict[str, Any], model: Model, trace: Trace, alive: torch.Tensor) -> int:
    """Put a checkpoint's state back; the step to continue from."""
    model.load(saved["model"])
    done = saved["trace"]["losses"].shape[1]
    trace.losses[:, :done] = saved["trace"]["losses"]
    if trace.end_to_end is not None:
        trace.end_to_end[:, :done] = saved["trace"]["end_to_end"]
    trace.diverged_at[:] = saved["trace"]["diverged_at"]
    alive.copy_(saved["alive"])
    return int(saved["step"])
