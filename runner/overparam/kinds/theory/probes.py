"""Numeric probes of the paper's theory: each returns named metrics (and curves for a figure).

They use the engine's own implementations (rule (10), rule (12)) and check them against
independent constructions (P_{W_e} built entry by entry from eigendecompositions, autograd
on the layers, quadrature of line integrals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import torch

from overparam.checks import fitted_order
from overparam.engine.end_to_end import numerical_rank_cut, pow_or_one, rule10_direction, rule12_direction

F64 = torch.float64


@dataclass
class ProbeResult:
    metrics: dict[str, float]
    table: list[dict[str, str]] = field(default_factory=list)  # one row per case, for the report
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # label -> (x, y) for a figure


def psd_power(M: torch.Tensor, alpha: float) -> torch.Tensor:
    """M^alpha for symmetric PSD M by eigendecomposition, with M^0 = I (also on the null space).
    Eigenvalues within rounding of zero are zero: a fractional power would blow 1e-16 up to 1e-3."""
    values, vectors = torch.linalg.eigh(M)
    tolerance = values.abs().max() * M.shape[0] * torch.finfo(M.dtype).eps
    values = torch.where(values > tolerance, values, torch.zeros_like(values))
    powered = values.pow(alpha) if alpha > 0 else torch.ones_like(values)
    power: torch.Tensor = (vectors * powered) @ vectors.T
    return power


PERTURBATIONS = ("exponent", "asymmetric", "sign")  # wrong versions of P, for tests


def preconditioner(W: torch.Tensor, depth: int, perturb: str | None = None) -> torch.Tensor:
    """P_{W_e} as a (kd × kd) matrix acting on column-major vec(G): Σ_j [WᵀW]^{(N−j)/N} ⊗ [WWᵀ]^{(j−1)/N}.
    `perturb` builds a wrong P (an exponent off by one, a non-symmetric factor, a term with the
    wrong sign), so that tests can show the checks catch it."""
    left, right = W @ W.T, W.T @ W
    shift = 1 if perturb == "exponent" else 0
    terms = [torch.kron(psd_power(right, (depth - j) / depth), psd_power(left, (j - 1 + shift) / depth)) for j in range(1, depth + 1)]
    if perturb == "asymmetric":
        terms[0] = terms[0] @ (torch.eye(len(terms[0]), dtype=F64) + torch.triu(torch.ones_like(terms[0]), 1) * 0.1)
    if perturb == "sign":
        terms[0] = -3 * terms[0]
    return cast(torch.Tensor, sum(terms))  # left to right, as always


def vec(M: torch.Tensor) -> torch.Tensor:
    return M.T.reshape(-1)  # column-major, as the paper's vec


def random_matrix(k: int, d: int, rank: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(k, rank, generator=gen, dtype=F64) @ torch.randn(rank, d, generator=gen, dtype=F64)


def precond_spectrum(shapes: list[tuple[int, int, int]], depths: list[int], seed: int, perturb: str | None = None) -> ProbeResult:
    """Claim 1 on random W_e of shape (k, d) and rank r: P symmetric PSD, eigenpairs as stated,
    and the engine's rule (10) equal to P·vec(G)."""
    gen = torch.Generator().manual_seed(seed)
    worst = {"asymmetry": 0.0, "negative_eigenvalue": 0.0, "eigenpair_deviation": 0.0, "rule10_vs_P": 0.0}
    table, predicted, computed = [], [], []
    for k, d, rank in shapes:
        W = random_matrix(k, d, rank, gen)
        G = torch.randn(k, d, generator=gen, dtype=F64)
        U, sigma, Vh = torch.linalg.svd(W, full_matrices=True)
        sigma = numerical_rank_cut(sigma, max(k, d))
        s_left = torch.cat([sigma, sigma.new_zeros(k - len(sigma))])
        s_right = torch.cat([sigma, sigma.new_zeros(d - len(sigma))])
        for depth in depths:
            P = preconditioner(W, depth, perturb)
            scale = float(P.abs().max())
            eig = torch.linalg.eigvalsh((P + P.T) / 2)
            deviation = 0.0
            for r in range(k):
                for q in range(d):
                    v = vec(torch.outer(U[:, r], Vh[q]))
                    lam = sum(
                        pow_or_one(s_left[r], 2 * (depth - j) / depth) * pow_or_one(s_right[q], 2 * (j - 1) / depth)
                        for j in range(1, depth + 1)
                    )
                    deviation = max(deviation, float((P @ v - lam * v).norm()) / scale)
                    predicted.append(float(lam))
                    computed.append(float(v @ P @ v))
            rule = vec(rule10_direction(W, G, depth))
            rule_gap = float((rule - P @ vec(G)).norm() / (P @ vec(G)).norm())
            row = {
                "asymmetry": float((P - P.T).abs().max()) / scale,
                "negative_eigenvalue": max(0.0, -float(eig.min())) / scale,
                "eigenpair_deviation": deviation,
                "rule10_vs_P": rule_gap,
            }
            for key, value in row.items():
                worst[key] = max(worst[key], value)
            table.append({"k × d (rank)": f"{k} × {d} ({rank})", "N": str(depth), **{key: f"{value:.1e}" for key, value in row.items()}})
    return ProbeResult(worst, table, {"eigenvalues": (predicted, computed)})


def single_output_rule(dims: list[int], depths: list[int], seed: int, cases: int = 20, depth_offset: int = 0) -> ProbeResult:
    """Rule (12) against rule (10) on random 1 × d end-to-end matrices and gradients
    (`depth_offset` ≠ 0 compares (12) at the wrong depth, a perturbation for tests)."""
    gen = torch.Generator().manual_seed(seed)
    worst, table = 0.0, []
    for d in dims:
        w = torch.randn(cases, d, generator=gen, dtype=F64)
        g = torch.randn(cases, d, generator=gen, dtype=F64)
        for depth in depths:
            twelve = rule12_direction(w, g, depth + depth_offset)
            ten = rule10_direction(w.unsqueeze(1), g.unsqueeze(1), depth).squeeze(1)
            gap = float(((twelve - ten).norm(dim=1) / twelve.norm(dim=1)).max())
            worst = max(worst, gap)
            table.append({"d": str(d), "N": str(depth), "max relative difference": f"{gap:.1e}"})
    return ProbeResult({"max_relative_difference": worst}, table)


def _regression(n: int, d: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(n, d, generator=gen, dtype=F64)
    Y = X @ torch.randn(d, k, generator=gen, dtype=F64) + 0.1 * torch.randn(n, k, generator=gen, dtype=F64)
    return X, Y


def _l2_gradient(W: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """∇ of L¹(W) = (1/n)‖X Wᵀ − Y‖², for W of shape (k, d)."""
    return (2.0 / X.shape[0]) * (X @ W.T - Y).T @ X


def balanced_layers(W_e: torch.Tensor, depth: int, width: int, gen: torch.Generator) -> list[torch.Tensor]:
    """W_1..W_N (width × d, …, k × width) with product W_e and W_{j+1}ᵀW_{j+1} = W_jW_jᵀ exactly."""
    U, sigma, Vh = torch.linalg.svd(W_e, full_matrices=False)
    root = torch.diag(sigma.pow(1.0 / depth))
    frames = [torch.linalg.qr(torch.randn(width, len(sigma), generator=gen, dtype=F64)).Q for _ in range(depth - 1)]
    lefts = frames + [U]
    rights = [Vh.T] + frames
    return [left @ root @ right.T for left, right in zip(lefts, rights)]


def _product(layers: list[torch.Tensor]) -> torch.Tensor:
    W = layers[0]
    for layer in layers[1:]:
        W = layer @ W
    return W


def _gd_step(layers: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor, lr: float, weight_decay: float) -> list[torch.Tensor]:
    """One GD step on the layers, ∂L/∂W_j = (W_N⋯W_{j+1})ᵀ ∇L¹(W_e) (W_{j−1}⋯W_1)ᵀ."""
    grad = _l2_gradient(_product(layers), X, Y)
    new = []
    for j, W in enumerate(layers):
        above = _product(layers[j + 1 :]) if j + 1 < len(layers) else torch.eye(W.shape[0], dtype=F64)
        below = _product(layers[:j]) if j > 0 else torch.eye(W.shape[1], dtype=F64)
        new.append((1 - lr * weight_decay) * W - lr * above.T @ grad @ below.T)
    return new


def flow_deviation(layers: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor, lr: float, horizon: float, weight_decay: float) -> float:
    """max over steps of ‖W_e(net) − W_e(rule 10)‖ / ‖W_e(rule 10)‖, both run for horizon / lr steps."""
    depth = len(layers)
    rule = _product(layers)
    worst = 0.0
    for _ in range(round(horizon / lr)):
        layers = _gd_step(layers, X, Y, lr, weight_decay)
        rule = (1 - lr * weight_decay * depth) * rule - lr * rule10_direction(rule, _l2_gradient(rule, X, Y), depth)
        worst = max(worst, float((_product(layers) - rule).norm() / rule.norm()))
    return worst


def end_to_end_flow(
    cases: list[tuple[int, int, int, int]], lrs: list[float], horizon: float, weight_decay: float, seed: int, swap_inits: bool = False
) -> ProbeResult:
    """Theorem 1: for balanced layers, W_e follows rule (10) up to O(η) over a fixed horizon;
    for unbalanced layers (same W_e at step 0) the deviation does not vanish with η.
    `swap_inits` exchanges the balanced and unbalanced layers (a perturbation, for tests)."""
    gen = torch.Generator().manual_seed(seed)
    metrics = {"balanced_min_order": math.inf, "balanced_max_deviation": 0.0, "unbalanced_min_deviation": math.inf}
    table, series = [], {}
    for k, d, width, depth in cases:
        X, Y = _regression(40, d, k, gen)
        W_e = 0.5 * torch.randn(k, d, generator=gen, dtype=F64)
        balanced = balanced_layers(W_e, depth, width, gen)
        unbalanced = [W.clone() for W in balanced]
        unbalanced[0] = 2.0 * unbalanced[0]  # with the next line: the same product, no longer balanced
        unbalanced[-1] = 0.5 * unbalanced[-1]
        if swap_inits:
            balanced, unbalanced = unbalanced, balanced
        devs = [flow_deviation(balanced, X, Y, lr, horizon, weight_decay) for lr in lrs]
        off = [flow_deviation(unbalanced, X, Y, lr, horizon, weight_decay) for lr in lrs]
        order = fitted_order(lrs, devs)
        metrics["balanced_min_order"] = min(metrics["balanced_min_order"], order)
        metrics["balanced_max_deviation"] = max(metrics["balanced_max_deviation"], max(devs))
        metrics["unbalanced_min_deviation"] = min(metrics["unbalanced_min_deviation"], min(off))
        label = f"k={k}, d={d}, width {width}, N={depth}"
        series[f"{label}, balanced"] = (lrs, devs)
        series[f"{label}, unbalanced"] = (lrs, off)
        table.append(
            {
                "case": label,
                "deviation per lr (balanced)": ", ".join(f"{v:.2e}" for v in devs),
                "fitted order": f"{order:.3f}",
                "unbalanced": ", ".join(f"{v:.2e}" for v in off),
            }
        )
    return ProbeResult(metrics, table, series)


def circulation(
    field: Callable[[torch.Tensor], torch.Tensor], centre: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: float, points: int
) -> tuple[float, float]:
    """∮ F·dw around the circle centre + radius(cos θ a + sin θ b) by the trapezoid rule (spectrally
    accurate for a smooth periodic integrand), and the mean ‖F‖ on it, for normalising."""
    theta = torch.arange(points, dtype=F64) * (2 * math.pi / points)
    w = centre + radius * (theta.cos().unsqueeze(1) * a + theta.sin().unsqueeze(1) * b)  # (M, d)
    tangent = radius * (-theta.sin().unsqueeze(1) * a + theta.cos().unsqueeze(1) * b)
    F = field(w)
    return float((F * tangent).sum() * (2 * math.pi / points)), float(F.norm(dim=1).mean())


def not_a_gradient(
    d: int, p: float, depths: list[int], loops: int, points: int, seed: int, as_gradient: bool = False, gradient_as_rule: bool = False
) -> ProbeResult:
    """Theorem 2: the field of rule (12) on ℓp regression (∇L¹(0) ≠ 0) has closed loops with a
    clearly non-zero line integral; the depth-1 gradient field, run through the same code, has none.
    Perturbations for tests: `as_gradient` puts the gradient field in place of every rule,
    `gradient_as_rule` the depth-2 rule in place of the gradient field."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(30, d, generator=gen, dtype=F64)
    y = X @ torch.randn(d, generator=gen, dtype=F64) + 0.3 * torch.randn(30, generator=gen, dtype=F64)

    def gradient(w: torch.Tensor) -> torch.Tensor:
        r = w @ X.T - y
        return (p / X.shape[0]) * (r.abs().pow(p - 1) * r.sign()) @ X

    metrics, table = {}, []
    for depth in [1, *depths]:
        n = 1 if as_gradient else depth
        if depth == 1 and gradient_as_rule:
            n = 2

        def field(w: torch.Tensor, n: int = n) -> torch.Tensor:
            return -rule12_direction(w, gradient(w), n)

        best, convergence = 0.0, 0.0
        for _ in range(loops):
            centre = torch.randn(d, generator=gen, dtype=F64)
            a, b = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=F64)).Q.T
            coarse, _ = circulation(field, centre, a, b, 0.5, points)
            fine, scale = circulation(field, centre, a, b, 0.5, 2 * points)
            relative = abs(fine) / (2 * math.pi * 0.5 * scale)
            best = max(best, relative)
            convergence = max(convergence, abs(fine - coarse) / (2 * math.pi * 0.5 * scale))
        name = "gradient_field" if depth == 1 else f"rule12_depth{depth}"
        metrics[f"{name}_max_circulation"] = best
        metrics[f"{name}_quadrature_error"] = convergence
        table.append(
            {
                "field": "∇L¹ (depth 1: a true gradient)" if depth == 1 else f"rule (12), N = {depth}",
                "max |∮F·dw| / (length · mean‖F‖)": f"{best:.2e}",
                f"quadrature change {points}→{2 * points} points": f"{convergence:.1e}",
            }
        )
    return ProbeResult(metrics, table)
