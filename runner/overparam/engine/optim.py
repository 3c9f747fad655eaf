"""Batched optimisers for R independent runs, with torch.optim's exact update order.

Each is a small config (pydantic, the spec's `optimizer:`) with `init(param)` → state and
`update(param, grad, state, lr, weight_decay)`, which changes `param` in place. `lr`
broadcasts against `param` (one value per run). Weight decay is torch.optim's: grad + λ·param.
On the CPU, deep nets run the same rules in the C kernel (optim.h: the same operations in the same
order, rounded the same on every CPU), fed `moments(state)` and `scalars(state)`; this is the
torch-ops path (no compiler, or CUDA).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, Field, TypeAdapter

from overparam.strict import STRICT

State = dict[str, Any]


class _Optimizer(BaseModel):
    """One update, in two pieces as torch.optim composes it: L2 weight decay added to the
    gradient (grad + λ·param), then the optimizer's own rule (`step`). In the kernel both run as
    one rule (`RULE` names it in optim.h), fed the same moments and scalars."""

    model_config = STRICT
    RULE: ClassVar[str] = ""  # the rule's name in optim.h (engine/kernel.py's RULES)

    def init(self, param: torch.Tensor) -> State:
        return {}

    def moments(self, state: State) -> list[torch.Tensor]:
        return []

    def scalars(self, state: State) -> list[float]:
        """The rule's constants for this step, in optim.h's order (Adam's bias corrections: it
        counts the step here, so call it once per step and layer)."""
        return []

    def step(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, scalars: list[float]) -> None:
        raise NotImplementedError

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, weight_decay: float) -> None:
        scalars = self.scalars(state)
        if weight_decay:
            grad = grad.add(param, alpha=weight_decay)
        self.step(param, grad, state, lr, scalars)


class GradientDescent(_Optimizer):
    """`kind: gd`: W ← W − η(∇ + λW). (Deep nets' GD steps run in fused_step.c, not here.)"""

    kind: Literal["gd"]

    def step(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, scalars: list[float]) -> None:
        param.sub_(lr * grad)


class AdaGrad(_Optimizer):
    """`kind: adagrad`, as torch.optim.Adagrad (lr_decay 0)."""

    RULE: ClassVar[str] = "adagrad"
    kind: Literal["adagrad"]
    eps: float = Field(1e-10, gt=0.0)
    initial_accumulator: float = Field(0.0, ge=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"sum": torch.full_like(param, self.initial_accumulator)}

    def moments(self, state: State) -> list[torch.Tensor]:
        return [state["sum"]]

    def scalars(self, state: State) -> list[float]:
        return [self.eps]

    def step(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, scalars: list[float]) -> None:
        state["sum"].addcmul_(grad, grad, value=1.0)
        std = state["sum"].sqrt().add_(self.eps)
        param.sub_(lr * (grad / std))


class AdaDelta(_Optimizer):
    """`kind: adadelta`, as torch.optim.Adadelta."""

    RULE: ClassVar[str] = "adadelta"
    kind: Literal["adadelta"]
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    eps: float = Field(1e-6, gt=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"square_avg": torch.zeros_like(param), "acc_delta": torch.zeros_like(param)}

    def moments(self, state: State) -> list[torch.Tensor]:
        return [state["square_avg"], state["acc_delta"]]

    def scalars(self, state: State) -> list[float]:
        return [self.rho, self.eps]

    def step(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, scalars: list[float]) -> None:
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(self.rho).addcmul_(grad, grad, value=1.0 - self.rho)
        std = square_avg.add(self.eps).sqrt_()
        delta = acc_delta.add(self.eps).sqrt_().div_(std).mul_(grad)
        acc_delta.mul_(self.rho).addcmul_(delta, delta, value=1.0 - self.rho)
        param.sub_(lr * delta)


class Adam(_Optimizer):
    """`kind: adam`, as torch.optim.Adam (L2 weight decay, not AdamW)."""

    RULE: ClassVar[str] = "adam"
    kind: Literal["adam"]
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)

    def init(self, param: torch.Tensor) -> State:
        return {"step": 0, "m": torch.zeros_like(param), "v": torch.zeros_like(param)}

    def moments(self, state: State) -> list[torch.Tensor]:
        return [state["m"], state["v"]]

    def scalars(self, state: State) -> list[float]:
        state["step"] += 1
        step = state["step"]
        bias_correction1 = 1.0 - self.beta1**step
        bias_correction2_sqrt = (1.0 - self.beta2**step) ** 0.5
        return [self.beta1, self.beta2, self.eps, bias_correction1, bias_correction2_sqrt]

    def step(self, param: torch.Tensor, grad: torch.Tensor, state: State, lr: torch.Tensor, scalars: list[float]) -> None:
        bias_correction1, bias_correction2_sqrt = scalars[3], scalars[4]
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
