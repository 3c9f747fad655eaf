"""The end-to-end update rules of the paper: how W_e = W_N⋯W_1 moves under GD on the layers.

Rule (10), general k × d:  W_e ← (1 − ηλN)W_e − η Σ_j [W_eW_eᵀ]^{(j−1)/N} ∇L¹(W_e) [W_eᵀW_e]^{(N−j)/N}
Rule (12), k = 1:          W_e ← (1 − ηλN)W_e − η ‖W_e‖^{2−2/N} (∇L¹(W_e) + (N − 1)·Pr_{W_e}(∇L¹(W_e)))
Both return the preconditioned gradient (the term multiplied by η), batched over leading axes.
"""

from __future__ import annotations

import torch


def rule10_direction(W: torch.Tensor, G: torch.Tensor, depth: int) -> torch.Tensor:
    """Σ_{j=1..N} [WWᵀ]^{(j−1)/N} G [WᵀW]^{(N−j)/N} for W, G of shape (…, k, d).

    Fractional powers come from one SVD of W: [WWᵀ]^a = U diag(σ^{2a}) Uᵀ, padded with zero
    singular values (and 0^0 = 1), so rank-deficient and rectangular W are exact.
    """
    k, d = W.shape[-2], W.shape[-1]
    U, sigma, Vh = torch.linalg.svd(W, full_matrices=True)  # U (…, k, k), Vh (…, d, d)
    sigma = numerical_rank_cut(sigma, max(k, d))
    left_sigma = _padded(sigma, k)
    right_sigma = _padded(sigma, d)
    G_rotated = U.transpose(-1, -2) @ G @ Vh.transpose(-1, -2)  # Uᵀ G V, (…, k, d)
    weights = torch.zeros_like(G_rotated)
    for j in range(1, depth + 1):
        a, b = (j - 1) / depth, (depth - j) / depth
        weights = weights + _outer_powers(left_sigma, right_sigma, a, b)
    step: torch.Tensor = U @ (weights * G_rotated) @ Vh
    return step


def numerical_rank_cut(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Singular values within rounding of zero set to exactly zero: rank-deficient W_e keeps its
    null space (a fractional power would turn σ ≈ 1e-16 into ≈ 1e-3)."""
    tolerance = sigma.amax(dim=-1, keepdim=True) * size * torch.finfo(sigma.dtype).eps
    return torch.where(sigma > tolerance, sigma, torch.zeros_like(sigma))


def _padded(sigma: torch.Tensor, n: int) -> torch.Tensor:
    pad = n - sigma.shape[-1]
    return torch.cat([sigma, sigma.new_zeros(*sigma.shape[:-1], pad)], dim=-1) if pad > 0 else sigma[..., :n]


def _outer_powers(left: torch.Tensor, right: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """(…, k, d) with entries σ_r^{2a} σ_{r'}^{2b} (0^0 = 1): the eigenvalues of P_{W_e} (Claim 1)."""
    return pow_or_one(left, 2 * a).unsqueeze(-1) * pow_or_one(right, 2 * b).unsqueeze(-2)


def pow_or_one(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """x^exponent, with x^0 = 1 also where x = 0."""
    return x.pow(exponent) if exponent > 0 else torch.ones_like(x)


def rule12_direction(w: torch.Tensor, g: torch.Tensor, depth: int) -> torch.Tensor:
    """‖w‖^{2−2/N}(g + (N−1)·Pr_w(g)) row-wise for (R, d) tensors; Pr_w(g) = 0 where w = 0."""
    norm_sq = (w * w).sum(dim=-1, keepdim=True)
    safe = torch.where(norm_sq > 0, norm_sq, torch.ones_like(norm_sq))
    projection = (g * w).sum(dim=-1, keepdim=True) / safe * w
    return norm_sq.pow(1.0 - 1.0 / depth) * (g + (depth - 1) * projection)
