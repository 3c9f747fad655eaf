"""The regression spec's model kinds. Each is one class: its keys in the spec, what a run's
config records of it, how a batch of its runs becomes an engine model, and its words in the
report. Adding a model kind is a class here and a member of `ModelSpec`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import torch
from pydantic import BaseModel, Field

from overparam.engine import DeepLinear, EndToEnd, WarmupForm
from overparam.engine.init import Init, initial_end_to_end, initial_layers, product_of
from overparam.engine.kernel import kernel_for
from overparam.engine.optim import Optimizer
from overparam.losses import LpLoss
from overparam.strict import STRICT, UNIQUE, ModelName

if TYPE_CHECKING:
    from overparam.sweep.config import LinearRunConfig

Model = DeepLinear | EndToEnd | WarmupForm


class _Model(BaseModel):
    """What every model kind has: a name, and per-model overrides of the spec's defaults."""

    model_config = STRICT
    name: ModelName
    init: Init | None = Field(None, description="overrides train.init for this model")
    loss: LpLoss | None = Field(None, description="overrides the spec's loss for this model")
    lr: list[Annotated[float, Field(gt=0.0, le=1e3)]] | None = Field(
        None,
        min_length=1,
        max_length=64,
        json_schema_extra=UNIQUE,
        description="this model's own lr grid (e.g. for another optimizer); default tune.lr",
    )

    def shape(self) -> dict[str, Any]:
        """What a run's config records of the model (part of the run key)."""
        raise NotImplementedError

    def optimizer_of(self, default: Optimizer) -> Optimizer:
        return default

    def describe(self) -> str:
        """The model in words, for the report's setup."""
        raise NotImplementedError

    @staticmethod
    def batched(configs: list[LinearRunConfig], d: int, lr: torch.Tensor, dtype: torch.dtype, device: str) -> Model:
        """One batched engine model for runs of this kind (and one shape), each from its config."""
        raise NotImplementedError


class LinearNet(_Model):
    """`kind: linear_net`: x ↦ W_N⋯W_1 x, hidden width `width`, trained on its layers."""

    kind: Literal["linear_net"]
    depth: int = Field(..., ge=1, le=64)
    width: int = Field(100, ge=1, le=4096, description="hidden width (unused at depth 1)")
    optimizer: Optimizer | None = Field(None, description="overrides train.optimizer for this model")

    def shape(self) -> dict[str, Any]:
        return {"kind": self.kind, "depth": self.depth, "width": self.width if self.depth > 1 else None}

    def optimizer_of(self, default: Optimizer) -> Optimizer:
        return self.optimizer or default

    def describe(self) -> str:
        return f"{self.name}: depth {self.depth}" + (f", width {self.width}" if self.depth > 1 else "")

    @staticmethod
    def batched(configs: list[LinearRunConfig], d: int, lr: torch.Tensor, dtype: torch.dtype, device: str) -> Model:
        shape, first = configs[0].model, configs[0]
        depth, width = shape["depth"], shape["width"] or 1
        per_run = [initial_layers(c.init, d, depth, width, c.seed) for c in configs]
        layers = [torch.stack([layers[j] for layers in per_run]).to(device=device, dtype=dtype) for j in range(depth)]
        return DeepLinear(layers, lr, first.weight_decay, first.optimizer, kernel_for(device))


class EndToEndModel(_Model):
    """`kind: end_to_end`: a depth-1 model moved by the end-to-end rule (12) or (10) of depth `depth`."""

    kind: Literal["end_to_end"]
    depth: int = Field(..., ge=1, le=64)
    rule: Literal[10, 12] = Field(12, description="12: the single-output form; 10: the general form with matrix powers")
    width: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="start where the linear_net of this depth and width starts (its layers' product, same init and seed): "
        "how to emulate a net from a random, unbalanced init; default: the init's own W_e",
    )

    def shape(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"kind": self.kind, "depth": self.depth, "rule": self.rule}
        if self.width is not None:  # absent otherwise, so the runs' keys stay those they had before the key existed
            shape["width"] = self.width
        return shape

    def describe(self) -> str:
        start = f", started at the W_e of the width-{self.width} net" if self.width is not None else ""
        return f"{self.name}: depth-1 model moved by rule ({self.rule}) of depth {self.depth}{start}"

    @staticmethod
    def batched(configs: list[LinearRunConfig], d: int, lr: torch.Tensor, dtype: torch.dtype, device: str) -> Model:
        shape, first = configs[0].model, configs[0]
        if shape.get("width") is not None:
            starts = [product_of(initial_layers(c.init, d, shape["depth"], shape["width"], c.seed)) for c in configs]
        else:
            starts = [initial_end_to_end(c.init, d, c.seed) for c in configs]
        w = torch.stack(starts)
        return EndToEnd(w.to(device=device, dtype=dtype), lr, first.weight_decay, shape["depth"], shape["rule"], kernel_for(device))


class WarmupFormModel(_Model):
    """`kind: warmup_form`: §3's adaptive-lr + momentum form of GD on w = w₁·ω₂, started from
    the same weights as a depth-2, width-1 linear_net with the same init and seed."""

    kind: Literal["warmup_form"]

    def shape(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return f"{self.name}: §3's adaptive-lr + momentum form of GD on w = w₁·ω₂"

    @staticmethod
    def batched(configs: list[LinearRunConfig], d: int, lr: torch.Tensor, dtype: torch.dtype, device: str) -> Model:
        pairs = [initial_layers(c.init, d, 2, 1, c.seed) for c in configs]  # w = w₁·ω₂ of a depth-2, width-1 net
        omega = torch.stack([W2[0, 0] for _, W2 in pairs])
        w = torch.stack([W2[0, 0] * W1[0] for W1, W2 in pairs])
        return WarmupForm(w.to(device=device, dtype=dtype), omega.to(device=device, dtype=dtype), lr, kernel_for(device))


ModelSpec = Annotated[LinearNet | EndToEndModel | WarmupFormModel, Field(discriminator="kind")]


def model_kind(kind: str) -> type[_Model]:
    """The model class of a run config's `model.kind`."""
    classes: tuple[type[_Model], ...] = get_args(get_args(ModelSpec)[0])
    return next(cls for cls in classes if get_args(cls.model_fields["kind"].annotation) == (kind,))
