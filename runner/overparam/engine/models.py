"""Batched scalar-output linear models: R independent runs advanced in one tensor program.

A model exposes two operations to the step loop, which knows nothing about layers:
`end_to_end()` returns W_e for every run, `descend(g)` applies one gradient-descent step
given g = ∇L¹(W_e), the depth-1 gradient at that W_e.
"""

from __future__ import annotations

from typing import Any

import torch

from overparam.engine.end_to_end import rule10_direction, rule12_direction
from overparam.engine.kernel import FusedKernel
from overparam.engine.optim import GradientDescent, Optimizer


class DeepLinear:
    """x ↦ W_N⋯W_1 x for R runs, trained full-batch with closed-form gradients.

    For a scalar output, ∂L/∂W_j = a_jᵀ c_j with a_j = W_N⋯W_{j+1} (a row) and
    c_j = g W_1ᵀ⋯W_{j−1}ᵀ (a row): two vector chains and, for plain GD, one rank-1 update
    per layer, never a matrix-matrix product. Other optimisers get the gradient as a matrix.
    Given a `kernel`, the whole step runs in it, plain GD and the adaptive optimizers alike (the
    same maths, one pass per layer).
    """

    def __init__(
        self,
        layers: list[torch.Tensor],
        lr: torch.Tensor,
        weight_decay: float,
        optimizer: Optimizer | None = None,
        kernel: FusedKernel | None = None,
    ) -> None:
        self.layers = layers  # W_j: (R, h_j, h_{j−1}); W_1: (R, h_1, d), W_N: (R, 1, h_{N−1})
        self.lr = lr.view(-1, 1, 1).clone()  # (R, 1, 1)
        self.step_scale = -self.lr  # (R, 1, 1)
        self.decay = (1.0 - self.lr * weight_decay) if weight_decay else None
        self.weight_decay = weight_decay
        self.optimizer = None if optimizer is None or isinstance(optimizer, GradientDescent) else optimizer
        self.states = [self.optimizer.init(W) for W in layers] if self.optimizer else []
        self._above: list[torch.Tensor] = []
        fits = kernel is not None and kernel.supports(layers)
        self._fused = kernel.bind(layers, self.step_scale, self.decay) if kernel is not None and fits else None
        if self._fused is not None and self.optimizer is not None:
            self._fused.bind_rule(self.optimizer.rule(), self.lr, [self.optimizer.moments(state) for state in self.states])

    @property
    def uses_kernel(self) -> bool:
        """Whether the step runs in the fused kernel."""
        return self._fused is not None

    @property
    def arithmetic(self) -> str:
        """What computes this model's numbers, for its runs' records (data pass aside)."""
        return "C kernels" if self._fused is not None else "torch ops"

    def end_to_end(self) -> torch.Tensor:
        """(R, d); also keeps a_j = W_N⋯W_{j+1} for the backward chain."""
        if self._fused is not None:
            return self._fused.end_to_end  # the kernel's step has already computed it
        a = torch.ones_like(self.layers[-1][:, :, :1])  # (R, 1, 1): nothing above W_N
        above = []
        for W in reversed(self.layers):
            above.append(a)
            a = torch.bmm(a, W)  # (R, 1, h_{j−1})
        self._above = above[::-1]
        return a.squeeze(1)

    def descend(self, g: torch.Tensor) -> None:
        if self._fused is not None:
            if self.optimizer is None:
                self._fused.step(g)
            else:  # every layer's state counts the step (Adam), as in torch ops; their scalars agree
                scalars = [self.optimizer.scalars(state) for state in self.states][0]
                self._fused.adaptive_step(g, [self.weight_decay, *scalars])
            return
        c = g.unsqueeze(1)  # (R, 1, d)
        for j, (W, a) in enumerate(zip(self.layers, self._above)):
            c_next = torch.bmm(c, W.transpose(1, 2))  # uses W_j before its update
            if self.optimizer is not None:
                self.optimizer.update(W, torch.bmm(a.transpose(1, 2), c), self.states[j], self.lr, self.weight_decay)
            else:
                if self.decay is not None:
                    W.mul_(self.decay)
                W.baddbmm_(a.transpose(1, 2) * self.step_scale, c)  # W_j −= η a_jᵀ c_j
            c = c_next

    def state(self) -> dict[str, Any]:
        """Everything that changes while training (for a checkpoint); `load` puts it back in place."""
        states = [{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()} for s in self.states]
        return {
            "layers": [W.clone() for W in self.layers],
            "lr": self.lr.clone(),
            "step_scale": self.step_scale.clone(),
            "optimizer": states,
        }

    def load(self, state: dict[str, Any]) -> None:
        for W, saved in zip(self.layers, state["layers"]):
            W.copy_(saved)  # in place: the kernel holds these tensors' pointers
        self.lr.copy_(state["lr"])
        self.step_scale.copy_(state["step_scale"])
        for mine, saved in zip(self.states, state["optimizer"]):
            for key, value in saved.items():
                if isinstance(value, torch.Tensor):
                    mine[key].copy_(value)
                else:
                    mine[key] = value
        if self._fused is not None:
            self._fused.forward()

    def freeze(self, runs: torch.Tensor) -> None:
        """Park diverged runs at zero with zero step, so they stay finite and cost nothing extra."""
        for W in self.layers:
            W[runs] = 0.0
        self.lr[runs] = 0.0
        self.step_scale[runs] = 0.0
        if self._fused is not None:
            self._fused.forward()
        for state in self.states:
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    value[runs] = 0.0


class EndToEnd:
    """A depth-1 model moved by the end-to-end rule of a depth-N network, (12) or (10):
    W_e ← (1 − ηλN)W_e − η·direction(W_e, ∇L¹(W_e)). Given a `kernel`, rule (12) runs in it."""

    def __init__(
        self, w: torch.Tensor, lr: torch.Tensor, weight_decay: float, depth: int, rule: int = 12, kernel: FusedKernel | None = None
    ) -> None:
        self.w = w  # (R, d)
        self.lr = lr.view(-1, 1).clone()
        self.decay = 1.0 - self.lr * weight_decay * depth
        self.depth = depth
        self.rule = rule
        self._flat = kernel.flat([self.w, self.lr, self.decay]) if kernel is not None and rule == 12 else None

    @property
    def arithmetic(self) -> str:
        return "C kernels" if self._flat is not None else "torch ops"

    def end_to_end(self) -> torch.Tensor:
        return self.w

    def descend(self, g: torch.Tensor) -> None:
        if self._flat is not None:
            self._flat.rule12(self.w, g, self.lr, self.decay, self.depth)
            return
        if self.rule == 12:
            direction = rule12_direction(self.w, g, self.depth)
        else:  # the general rule on W_e as a 1 × d matrix
            direction = rule10_direction(self.w.unsqueeze(1), g.unsqueeze(1), self.depth).squeeze(1)
        self.w.copy_(self.w * self.decay - self.lr * direction)

    def state(self) -> dict[str, Any]:
        return {"w": self.w.clone(), "lr": self.lr.clone()}

    def load(self, state: dict[str, Any]) -> None:
        self.w.copy_(state["w"])
        self.lr.copy_(state["lr"])

    def freeze(self, runs: torch.Tensor) -> None:
        self.w[runs] = 0.0
        self.lr[runs] = 0.0


class WarmupForm:
    """§3's reading of GD on w = w₁·ω₂ (vector times scalar) as GD on w with an adaptive
    learning rate and a momentum-like term, exact up to O(η²) per step:
    w ← w − ρ∇L(w) − γw,  ρ = η ω₂²,  γ = η ω₂⁻¹ ∂L/∂ω₂,  and ω₂ ← ω₂ − η ∂L/∂ω₂,
    where ∂L/∂ω₂ = ∇L(w)·w₁ = ∇L(w)·w / ω₂."""

    def __init__(self, w: torch.Tensor, omega: torch.Tensor, lr: torch.Tensor, kernel: FusedKernel | None = None) -> None:
        self.w = w  # (R, d)
        self.omega = omega.view(-1, 1)  # (R, 1)
        self.lr = lr.view(-1, 1).clone()
        self._flat = kernel.flat([self.w, self.omega, self.lr]) if kernel is not None else None

    @property
    def arithmetic(self) -> str:
        return "C kernels" if self._flat is not None else "torch ops"

    def end_to_end(self) -> torch.Tensor:
        return self.w

    def descend(self, g: torch.Tensor) -> None:
        if self._flat is not None:
            self._flat.warmup(self.w, self.omega, g, self.lr)
            return
        d_omega = (g * self.w).sum(dim=1, keepdim=True) / self.omega  # ∂L/∂ω₂
        rho = self.lr * self.omega.square()
        gamma = self.lr * d_omega / self.omega
        self.w.copy_(self.w - rho * g - gamma * self.w)
        self.omega.sub_(self.lr * d_omega)

    def state(self) -> dict[str, Any]:
        return {"w": self.w.clone(), "omega": self.omega.clone(), "lr": self.lr.clone()}

    def load(self, state: dict[str, Any]) -> None:
        self.w.copy_(state["w"])
        self.omega.copy_(state["omega"])
        self.lr.copy_(state["lr"])

    def freeze(self, runs: torch.Tensor) -> None:
        self.w[runs] = 0.0
        self.omega[runs] = 1.0
        self.lr[runs] = 0.0


class Stacked:
    """Several batched models trained as one: their runs are stacked row-wise, so the step loop
    makes one pass over the data for all of them. A run's numbers do not change (the data pass
    treats rows independently, and each model keeps its own tensors)."""

    def __init__(self, models: list[DeepLinear | EndToEnd | WarmupForm]) -> None:
        self.models = models
        self.sizes = [model.lr.shape[0] for model in models]

    def end_to_end(self) -> torch.Tensor:
        return torch.cat([model.end_to_end() for model in self.models])

    def descend(self, g: torch.Tensor) -> None:
        for model, part in zip(self.models, torch.split(g, self.sizes)):
            model.descend(part)

    def state(self) -> dict[str, Any]:
        return {"models": [model.state() for model in self.models]}

    def load(self, state: dict[str, Any]) -> None:
        for model, saved in zip(self.models, state["models"]):
            model.load(saved)

    def freeze(self, runs: torch.Tensor) -> None:
        for model, part in zip(self.models, torch.split(runs, self.sizes)):
            if bool(part.any()):
                model.freeze(part)
