"""Batched scalar-output linear models: R independent runs advanced in one tensor program.

A model exposes two operations to the step loop, which knows nothing about layers:
`end_to_end()` returns W_e for every run, `descend(g)` applies one gradient-descent step
given g = ∇L¹(W_e), the depth-1 gradient at that W_e.
"""

from __future__ import annotations

import torch


class DeepLinear:
    """x ↦ W_N⋯W_1 x for R runs, trained by full-batch GD with closed-form gradients.

    For a scalar output, ∂L/∂W_j = a_jᵀ c_j with a_j = W_N⋯W_{j+1} (a row) and
    c_j = g W_1ᵀ⋯W_{j−1}ᵀ (a row): two vector chains and one rank-1 update per layer,
    never a matrix-matrix product.
    """

    def __init__(self, layers: list[torch.Tensor], lr: torch.Tensor, weight_decay: float) -> None:
        self.layers = layers  # W_j: (R, h_j, h_{j−1}); W_1: (R, h_1, d), W_N: (R, 1, h_{N−1})
        self.step_scale = (-lr).view(-1, 1, 1)  # (R, 1, 1)
        self.decay = (1.0 - lr * weight_decay).view(-1, 1, 1) if weight_decay else None
        self._above: list[torch.Tensor] = []

    def end_to_end(self) -> torch.Tensor:
        """(R, d); also keeps a_j = W_N⋯W_{j+1} for the backward chain."""
        a = torch.ones_like(self.layers[-1][:, :, :1])  # (R, 1, 1): nothing above W_N
        above = []
        for W in reversed(self.layers):
            above.append(a)
            a = torch.bmm(a, W)  # (R, 1, h_{j−1})
        self._above = above[::-1]
        return a.squeeze(1)

    def descend(self, g: torch.Tensor) -> None:
        c = g.unsqueeze(1)  # (R, 1, d)
        for W, a in zip(self.layers, self._above):
            c_next = torch.bmm(c, W.transpose(1, 2))  # uses W_j before its update
            if self.decay is not None:
                W.mul_(self.decay)
            W.baddbmm_(a.transpose(1, 2) * self.step_scale, c)  # W_j −= η a_jᵀ c_j
            c = c_next

    def freeze(self, runs: torch.Tensor) -> None:
        """Park diverged runs at zero with zero step, so they stay finite and cost nothing extra."""
        for W in self.layers:
            W[runs] = 0.0
        self.step_scale[runs] = 0.0


class EndToEnd:
    """A depth-1 model moved by the end-to-end rule (12) of a depth-N network:
    W_e ← (1 − ηλN)W_e − η‖W_e‖^{2−2/N}(g + (N − 1)·Pr_{W_e}(g))."""

    def __init__(self, w: torch.Tensor, lr: torch.Tensor, weight_decay: float, depth: int) -> None:
        self.w = w  # (R, d)
        self.lr = lr.view(-1, 1)
        self.decay = 1.0 - lr.view(-1, 1) * weight_decay * depth
        self.depth = depth

    def end_to_end(self) -> torch.Tensor:
        return self.w

    def descend(self, g: torch.Tensor) -> None:
        self.w.copy_(self.w * self.decay - self.lr * end_to_end_direction(self.w, g, self.depth))

    def freeze(self, runs: torch.Tensor) -> None:
        self.w[runs] = 0.0
        self.lr[runs] = 0.0


def end_to_end_direction(w: torch.Tensor, g: torch.Tensor, depth: int) -> torch.Tensor:
    """‖w‖^{2−2/N}(g + (N−1)·Pr_w(g)) row-wise for (R, d) tensors; Pr_w(g) = 0 where w = 0."""
    norm_sq = (w * w).sum(dim=1, keepdim=True)
    safe = torch.where(norm_sq > 0, norm_sq, torch.ones_like(norm_sq))
    projection = (g * w).sum(dim=1, keepdim=True) / safe * w
    return norm_sq.pow(1.0 - 1.0 / depth) * (g + (depth - 1) * projection)
