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
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer, model_validator

from overparam.strict import STRICT, equals, strict_with, when

State = dict[str, Any]


class _Optimizer(BaseModel):
    """One update, in two pieces as torch.optim composes it: L2 weight decay added to the
    gradient (grad + λ·param), then the optimizer's own rule (`step`). In the kernel both run as
    one rule (`RULE` names it in optim.h), fed the same moments and scalars."""

    model_config = STRICT
    RULE: ClassVar[str] = ""  # the rule's name in optim.h (engine/kernel.py's RULES)

    def rule(self) -> str:
        """The rule's name in optim.h for this configuration."""
        return self.RULE

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

    model_config = strict_with(
        when(equals("eps", 0.0), {"required": ["initial_accumulator"], "properties": {"initial_accumulator": {"exclusiveMinimum": 0}}})
    )
    RULE: ClassVar[str] = "adagrad"
    kind: Literal["adagrad"]
    eps: float = Field(1e-10, ge=0.0, description="0 only with a positive initial_accumulator (TensorFlow 1 has none)")
    initial_accumulator: float = Field(0.0, ge=0.0, description="TensorFlow 1's default is 0.1")

    @model_validator(mode="after")
    def _divides_by_something(self) -> AdaGrad:
        if self.eps == 0.0 and self.initial_accumulator == 0.0:
            raise ValueError("eps 0 needs a positive initial_accumulator (else the first step divides 0 by 0); set one of them above 0")
        return self

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
    """`kind: adam`, as torch.optim.Adam (L2 weight decay, not AdamW); `eps_hat: true` is
    TensorFlow 1's AdamOptimizer instead: ε added to √v before the bias correction, which is
    folded into the step (α = η·√(1 − β2^t)/(1 − β1^t), W −= α·m/(√v + ε̂)), so ε weighs
    1/√(1 − β2^t) times more early on."""

    RULE: ClassVar[str] = "adam"
    kind: Literal["adam"]
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)
    eps_hat: bool = Field(False, description="TensorFlow 1's ε̂ form (see the class); false: torch.optim's")

    def rule(self) -> str:
        return "adam_hat" if self.eps_hat else "adam"

    @model_serializer(mode="wrap")
    def _stored_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without `eps_hat` when false: the stored form, and so the run keys, of every Adam run
        made before the key existed stay as they were."""
        data: dict[str, Any] = handler(self)
        if not self.eps_hat:
            data.pop("eps_hat", None)
        return data

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
        if self.eps_hat:  # optim.h's adam_hat_row, operation for operation
            alpha = lr * bias_correction2_sqrt / bias_correction1
            param.sub_(state["m"].mul(alpha).div_(state["v"].sqrt().add_(self.eps)))
            return
        step_size = lr / bias_correction1
        denom = state["v"].sqrt().div_(bias_correction2_sqrt).add_(self.eps)  # one fresh buffer, reused below
        param.sub_(denom.reciprocal_().mul_(state["m"]).mul_(step_size))


Optimizer = Annotated[GradientDescent | AdaGrad | AdaDelta | Adam, Field(discriminator="kind")]
_OPTIMIZER = TypeAdapter(Optimizer)


def parse_optimizer(data: dict[str, Any]) -> Optimizer:
    """An optimizer config back from its stored dict form."""
    return _OPTIMIZER.validate_python(data)
