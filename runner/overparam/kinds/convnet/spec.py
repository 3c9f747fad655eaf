"""The convnet claim's spec: the TensorFlow MNIST tutorial convnet against its overparameterized twin."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from overparam.claim import Claim
from overparam.data.mnist import MnistData
from overparam.strict import STRICT, ModelName, strict_with


class ConvnetTrain(BaseModel):
    """The tutorial's training: SGD with momentum, lr decayed in steps (once per epoch, or per
    `decay_every_images` images seen), an L2 penalty on the dense layers."""

    model_config = strict_with(rules=("steps is a multiple of record_every",))
    steps: int = Field(..., ge=1, le=1_000_000)
    record_every: int = Field(..., ge=1, description="average batch losses over windows of this many steps")
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(0.01, gt=0.0, le=10.0)
    decay: float = Field(0.95, gt=0.0, le=1.0, description="lr factor per decay (staircase: once per epoch, or per decay_every_images)")
    decay_every_images: int | None = Field(
        None,
        ge=1,
        description="decay once per this many images seen (the tutorial's train_size: 55000) instead of once per epoch of the split",
    )
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    penalty: float = Field(5e-4, ge=0.0, le=1.0, description="× Σ‖θ‖²/2 over the dense layers' weights and biases")

    @model_serializer(mode="wrap")
    def _unset_period_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A run's key hashes this dump: without a decay period, runs keep the keys they had before it existed."""
        dumped: dict[str, Any] = handler(self)
        if self.decay_every_images is None:
            dumped.pop("decay_every_images", None)
        return dumped

    @model_validator(mode="after")
    def _windows_fit(self) -> ConvnetTrain:
        if self.steps % self.record_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of record_every ({self.record_every})")
        return self


class TutorialConvnetModel(BaseModel):
    """`kind: tutorial_convnet`; `overparameterized: true` makes each dense matrix a product of two."""

    model_config = STRICT
    kind: Literal["tutorial_convnet"]
    name: ModelName
    overparameterized: bool = False
    added_factors: Literal["identity", "random"] = Field(
        "identity",
        description="the twin's added factors: identity (the same function as the original at the start) or random like the other weights",
    )

    @model_validator(mode="after")
    def _factors_need_a_twin(self) -> TutorialConvnetModel:
        if self.added_factors != "identity" and not self.overparameterized:
            raise ValueError("added_factors applies to the overparameterized twin only: set overparameterized: true or drop added_factors")
        return self


class ConvnetSpec(Claim):
    PENALIZED: ClassVar[bool] = True
    experiment: Literal["convnet"]
    data: MnistData
    train: ConvnetTrain
    models: list[TutorialConvnetModel] = Field(..., min_length=1, max_length=8)

    def model(self, name: str) -> TutorialConvnetModel:
        return next(m for m in self.models if m.name == name)

    def budget(self) -> str:
        return f"{self.train.steps:,} steps"

    def declared_run_steps(self) -> int:
        return len(self.models) * len(self.seeds) * self.train.steps

    def lr_grid(self, name: str) -> list[float]:
        return [self.train.lr]

    def records_step(self, name: str, step: int) -> bool:
        return 0 < step <= self.train.steps and step % self.train.record_every == 0
