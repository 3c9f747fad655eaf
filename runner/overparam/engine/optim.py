"""Batched optimisers for R independent runs, with torch.optim's exact update order.

Each is a small config (pydantic, the spec's `optimizer:`) with `init(param)` → state and
`update(param, grad, state, lr, weight_decay, kernel)`, which changes `param` in place. `lr`
broadcasts against `param` (one value per run). Weight decay is torch.optim's: grad + λ·param.
Given a `kernel`, the update runs in optim.c (the same operations in the same order, rounded the
same on every CPU); else in torch ops.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, Field, TypeAdapter

from overparam.engine.kernel import FusedKernel
from overparam.strict import STRICT

State = dict[str, Any]
Kernel = FusedKernel | None


class GradientDescent(BaseModel):
    """`kind: gd`: W ← W − η(∇ + λW)."""

    model_config = STRICT
    kind: Literal["gd"]

    def init(self, param: torch.Tensor) -> State:
        return {}

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, weight_decay: float, kernel: Kernel = None
    ) -> None:
        if weight_decay:
            grad = grad.add(param, alpha=weight_decay)
        param.sub_(lr * grad)


class AdaGrad(BaseModel):
    """`kind: adagrad`, as torch.optim.Adagrad (lr_decay 0)."""

    model_config = STRICT
    kind: Literal["adagrad"]
    eps: float = Field(1e-10, gt=0.0)
    initial_accumulator: float = Field(0.0, ge=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"sum": torch.full_like(param, self.initial_accumulator)}

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, weight_decay: float, kernel: Kernel = None
    ) -> None:
        if kernel is not None and kernel.update("adagrad", param, grad, [state["sum"]], lr, [weight_decay, self.eps]):
            return
        if weight_decay:
            grad = grad.add(param, alpha=weight_decay)
        state["sum"].addcmul_(grad, grad, value=1.0)
        std = state["sum"].sqrt().add_(self.eps)
        param.sub_(lr * (grad / std))


class AdaDelta(BaseModel):
    """`kind: adadelta`, as torch.optim.Adadelta."""

    model_config = STRICT
    kind: Literal["adadelta"]
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    eps: float = Field(1e-6, gt=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"square_avg": torch.zeros_like(param), "acc_delta": torch.zeros_like(param)}

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, weight_decay: float, kernel: Kernel = None
    ) -> None:
        moments = [state["square_avg"], state["acc_delta"]]
        if kernel is not None and kernel.update("adadelta", param, grad, moments, lr, [weight_decay, self.rho, self.eps]):
            return
        if weight_decay:
            grad = grad.add(param, alpha=weight_decay)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(self.rho).addcmul_(grad, grad, value=1.0 - self.rho)
        std = square_avg.add(self.eps).sqrt_()
        delta = acc_delta.add(self.eps).sqrt_().div_(std).mul_(grad)
        acc_delta.mul_(self.rho).addcmul_(delta, delta, value=1.0 - self.rho)
        param.sub_(lr * delta)


class Adam(BaseModel):
    """`kind: adam`, as torch.optim.Adam (L2 weight decay, not AdamW)."""

    model_config = STRICT
    kind: Literal["adam"]
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"step": 0, "m": torch.zeros_like(param), "v": torch.zeros_like(param)}

    def update(
        self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, weight_decay: float, kernel: Kernel = None
    ) -> None:
        state["step"] += 1
        step = state["step"]
        bias_correction1 = 1.0 - self.beta1**step
        bias_correction2_sqrt = (1.0 - self.beta2**step) ** 0.5
        scalars = [weight_decay, self.beta1, self.beta2, self.eps, bias_correction1, bias_correction2_sqrt]
        if kernel is not None and kernel.update("adam", param, grad, [state["m"], state["v"]], lr, scalars):
            return
        if weight_decay:
            grad = grad.add(param, alpha=weight_decay)
        state["m"].lerp_(grad, 1.0 - self.beta1)
        state["v"].mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
        step_size = lr / bias_correction1
        denom = state["v"].sqrt().div_(bias_correction2_sqrt).add_(self.eps)  # one fresh buffer, reused below
        param.sub_(denom.reciprocal_().mul_(state["m"]).mul_(step_size))


Optimizer = Annotated[GradientDescent | AdaGrad | AdaDelta | Adam, Field(discriminator="kind")]
_OPTIMIZER = TypeAdapter(Optimizer)


def parse_optimizer(data: dict[str, Any]) -> Optimizer:
    """An optimizer config back from its stored dict form."""
    return _OPTIMIZER.validate_python(data)
