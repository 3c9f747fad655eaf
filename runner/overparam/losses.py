"""ℓp regression losses, L(w) = mean_i |x_iᵀw − y_i|^p (no 1/p factor), and their exact optimum L*."""

from __future__ import annotations

from fractions import Fraction
from operator import mul
from typing import Literal

import torch
from pydantic import BaseModel, Field

from overparam.strict import STRICT


class LpLoss(BaseModel):
    """`kind: lp`: mean of |residual|^p. A 1/p factor would only rescale the learning rate."""

    model_config = STRICT
    kind: Literal["lp"]
    p: float = Field(..., ge=2.0, le=64.0, description="exponent, p ≥ 2 (2 = least squares)")


def lp_value(residual: torch.Tensor, p: float) -> torch.Tensor:
    """Mean over the last axis of |r|^p; `residual` is (..., n)."""
    if p == 2.0:
        return residual.square().mean(dim=-1)
    return residual.abs().pow(p).mean(dim=-1)


def lp_residual_grad(residual: torch.Tensor, p: float) -> torch.Tensor:
    """dL/dr for the mean: (p/n)·|r|^{p−1}·sign(r), shaped like `residual` (..., n)."""
    return lp_residual_power_(residual.clone(), p) * (p / residual.shape[-1])


def lp_residual_power_(residual: torch.Tensor, p: float) -> torch.Tensor:
    """|r|^{p−1}·sign(r) in place: dL/dr without its constant factor p/n, for the step loop,
    which applies that factor to the d-sized gradient instead of the n-sized residual."""
    if p == 2.0:
        return residual
    if p == 4.0:
        return residual.pow_(3)
    return residual.sign().mul_(residual.abs_().pow_(p - 1.0))


def lp_optimum(X: torch.Tensor, y: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """The exact minimiser w* and L* of the convex depth-1 problem, in float64.

    Least squares for p = 2; for p > 2 damped Newton from the least-squares point, run until
    the loss stops decreasing in float64 (the Newton decrement then is ~1e-30). L* is
    `exact_lp_value` at w*: w*'s last bits follow LAPACK and the thread count (≈1e-12 relative
    between 1 and 2 threads here), but the loss is flat there to second order, so L* does not.
    """
    X = X.to(torch.float64)
    y = y.to(torch.float64)
    w = torch.linalg.lstsq(X, y.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    if p == 2.0:
        return w, exact_lp_value(X, y, w, p)
    n = X.shape[0]
    value = float(lp_value(X @ w - y, p))
    for _ in range(200):
        r = X @ w - y
        grad = X.T @ lp_residual_grad(r, p)
        curvature = (p * (p - 1.0) / n) * r.abs().pow(p - 2.0)
        hessian = X.T @ (X * curvature.unsqueeze(1))
        step = torch.linalg.lstsq(hessian, grad.unsqueeze(1), driver="gelsd").solution.squeeze(1)
        decrement = float(grad @ step)
        t = 1.0
        while t > 1e-12:
            candidate = float(lp_value(X @ (w - t * step) - y, p))
            if candidate <= value:
                break
            t *= 0.5
        else:
            break
        w = w - t * step
        improved = value - candidate
        value = candidate
        if decrement < 1e-28 or improved <= 1e-16 * abs(value) and decrement < 1e-20:
            break
    return w, exact_lp_value(X, y, w, p)


def exact_lp_value(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, p: float) -> float:
    """mean_i |x_iᵀw − y_i|^p of float64 inputs, computed exactly (integers) and rounded once.

    A float sum's bits depend on BLAS, SIMD width and thread count (L* of the real data moved
    by 21 ulps between 1 and 2 threads); this value depends only on the inputs. Non-integer p
    needs libm's pow(): there the float value is returned.
    """
    if p != int(p):
        return float(lp_value(X.to(torch.float64) @ w.to(torch.float64) - y.to(torch.float64), p))
    xs, x_shift = _as_integers(X)
    ws, w_shift = _as_integers(w)
    ys, y_shift = _as_integers(y)
    shift = max(x_shift + w_shift, y_shift)  # every residual is an integer times 2^-shift
    up_xw, up_y = shift - x_shift - w_shift, shift - y_shift
    d = len(ws)
    residuals = [(sum(map(mul, xs[i * d : (i + 1) * d], ws)) << up_xw) - (yi << up_y) for i, yi in enumerate(ys)]
    return _rounded_mean_power(residuals, shift, int(p))


def exact_mean_abs_power(values: torch.Tensor, p: float) -> float:
    """mean_i |v_i|^p, exactly and rounded once (the float value for non-integer p, as above):
    L(w = 0) = mean |y|^p without a pass over X."""
    if p != int(p):
        return float(values.to(torch.float64).abs().pow(p).mean())
    integers, shift = _as_integers(values)
    return _rounded_mean_power(integers, shift, int(p))


def _rounded_mean_power(integers: list[int], shift: int, p: int) -> float:
    """mean_i |m_i · 2^-shift|^p, summed exactly, rounded once; shift < 0 for huge values."""
    total = sum(abs(m) ** p for m in integers)
    return float(Fraction(total, len(integers)) / Fraction(2) ** (shift * p))


def _as_integers(values: torch.Tensor) -> tuple[list[int], int]:
    """Integers m_i and one shift s with values_i = m_i · 2^-s exactly (flattened, row-major)."""
    fractions, exponents = torch.frexp(values.detach().to("cpu", torch.float64).contiguous().flatten())
    mantissas: list[int] = (fractions * 2.0**53).to(torch.int64).tolist()  # exact: |fraction| < 1
    powers: list[int] = (exponents - 53).tolist()
    shift = -min((e for m, e in zip(mantissas, powers) if m), default=0)
    return [m << (e + shift) if m else 0 for m, e in zip(mantissas, powers)], shift
