"""The regression spec: linear models on ℓp regression, each model's lr tuned on a grid."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from overparam.claim import CLAIM_RULES, Claim
from overparam.data import DataSpec
from overparam.engine.init import Init, NormalInit
from overparam.engine.optim import GradientDescent, Optimizer
from overparam.losses import LpLoss
from overparam.strict import UNIQUE, equals, strict_with, when
from overparam.sweep.models import EndToEndModel, LinearNet, ModelSpec, WarmupFormModel
from overparam.yamlpos import KeyPath


class Train(BaseModel):
    """How every run trains. Either a fixed `steps` count, or a fixed `horizon` η·steps so that
    runs at different learning rates cover the same stretch of the gradient flow."""

    model_config = strict_with(
        {
            "anyOf": [
                {
                    "required": ["steps"],
                    "properties": {"steps": {"type": "integer"}, "horizon": {"type": "null"}, "records": {"type": "null"}},
                },
                {
                    "required": ["horizon", "records"],
                    "properties": {
                        "horizon": {"type": "number"},
                        "records": {"type": "integer"},
                        "steps": {"type": "null"},
                        "record_every": {"type": "null"},
                    },
                },
            ],
            # record_every defaults to 100, and at most 100000 points are recorded
            **when(
                {"required": ["steps"], "properties": {"steps": {"type": "integer"}, "record_every": {"type": "null"}}},
                {"properties": {"steps": {"multipleOf": 100, "maximum": 10_000_000}}},
            ),
        },
        rules=("with record_every: steps is a multiple of record_every, and steps / record_every is at most 100000",),
    )
    optimizer: Optimizer = GradientDescent(kind="gd")
    steps: int | None = Field(None, ge=1, le=100_000_000)
    record_every: int | None = Field(None, ge=1, description="with steps: record the loss every this many steps (default 100)")
    horizon: float | None = Field(None, gt=0.0, le=1e6, description="instead of steps: η × steps, the same for every lr")
    records: int | None = Field(None, ge=1, le=100_000, description="with horizon: recorded points per run")
    init: Init = NormalInit(kind="normal", std=0.01)
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)
    dtype: Literal["float64", "float32"] = "float64"
    record_end_to_end: bool = Field(False, description="also keep W_e at every recorded step (for emulation checks)")

    @model_validator(mode="after")
    def _one_schedule(self) -> Train:
        if (self.steps is None) == (self.horizon is None):
            raise ValueError("give either steps (with record_every) or horizon (with records)")
        if self.steps is not None:
            if self.records is not None:
                raise ValueError("records goes with horizon; with steps use record_every")
            every = self.record_every or 100
            if self.steps % every:
                raise ValueError(f"steps ({self.steps}) must be a multiple of record_every ({every})")
            if self.steps // every > 100_000:
                raise ValueError("more than 100000 recorded points; raise record_every")
        elif self.records is None or self.record_every is not None:
            raise ValueError("horizon goes with records (not record_every)")
        return self

    def schedule(self, lr: float) -> tuple[int, int]:
        """(steps, record_every) of a run at learning rate `lr`."""
        if self.steps is not None:
            return self.steps, self.record_every or 100
        assert self.horizon is not None and self.records is not None
        steps = round(self.horizon / lr)
        return steps, max(1, steps // self.records)

    def schedule_error(self, lr: float) -> str | None:
        """Why `lr` does not fit the horizon schedule, if it does not."""
        if self.horizon is None or self.records is None:
            return None
        steps = self.horizon / lr
        if abs(steps - round(steps)) > 1e-6 * steps or round(steps) % self.records:
            return f"horizon / lr = {steps:g} steps, which must be a whole multiple of records ({self.records})"
        if steps > 100_000_000:
            return f"horizon / lr = {steps:g} steps, more than 1e8"
        return None


class Tune(BaseModel):
    """Per-model learning rate: every value of the grid is run; `pick` chooses one per model.

    Seeds combine by the median of the pick metric; an lr where any seed diverged is never picked.
    With `refine`, each pick is then bracketed: the geometric midpoint toward each neighbouring lr
    (the first diverged one above all) is run, round after round, until both neighbours lie within
    a factor 2^(1/refine) of the pick (lrs are kept to 3 significant digits, so within 1% of that).
    """

    model_config = strict_with(
        {
            "allOf": [
                when(equals("pick", "fastest"), {"required": ["gap"], "properties": {"gap": {"type": "number"}}}),
                when(equals("pick", "smallest"), {"properties": {"refine": {"type": "null"}}}),
            ]
        }
    )
    lr: list[Annotated[float, Field(gt=0.0, le=1e3)]] = Field(..., min_length=1, max_length=64, json_schema_extra=UNIQUE)
    pick: Literal["lowest_final_gap", "lowest_mean_log_gap", "fastest", "smallest"] = Field(
        "lowest_final_gap",
        description="fastest: fewest steps to reach `gap`, ties broken by the final gap; "
        "smallest: the smallest lr of the grid (for fidelity specs, where every lr is compared)",
    )
    gap: float | None = Field(None, gt=0.0, description="with pick: fastest, the gap L − L* to reach")
    refine: int | None = Field(None, ge=1, le=8, description="bracket each pick within a factor 2^(1/refine) of its neighbours")

    @field_validator("lr")
    @classmethod
    def _distinct(cls, grid: list[float]) -> list[float]:
        if len(set(grid)) != len(grid):
            raise ValueError("the grid repeats a value")
        return sorted(grid)

    @model_validator(mode="after")
    def _rule_inputs(self) -> Tune:
        if self.pick == "fastest" and self.gap is None:
            raise ValueError("pick: fastest needs `gap: <the L − L* to reach>`")
        if self.pick == "smallest" and self.refine is not None:
            raise ValueError("pick: smallest takes the grid's smallest lr, which refinement cannot move; drop refine")
        return self


class RegressionSpec(Claim):
    """A regression claim: linear models on ℓp regression, lr tuned per model on a grid."""

    model_config = strict_with(
        {
            "allOf": [
                when(
                    {"required": ["checks"], "properties": {"checks": {"contains": equals("curve", "end_to_end")}}},
                    {"properties": {"train": equals("record_end_to_end", True)}},
                ),
                when(  # the end-to-end rule and the warm-up form take plain GD steps (the default optimizer)
                    {"required": ["models"], "properties": {"models": {"contains": equals("kind", ("end_to_end", "warmup_form"))}}},
                    {"properties": {"train": {"properties": {"optimizer": {"properties": {"kind": {"const": "gd"}}}}}}},
                ),
                when(  # refined lrs are not whole divisors of a horizon
                    {"required": ["tune"], "properties": {"tune": {"required": ["refine"], "properties": {"refine": {"type": "integer"}}}}},
                    {"properties": {"train": {"properties": {"horizon": {"type": "null"}}}}},
                ),
                when(
                    {"required": ["models"], "properties": {"models": {"contains": equals("kind", "warmup_form")}}},
                    {"properties": {"train": {"properties": {"weight_decay": {"const": 0}}}}},
                ),
            ]
        },
        rules=CLAIM_RULES
        + (
            "with train.horizon: horizon / lr is a whole number of steps, a multiple of train.records and at most 1e8, at every lr of every grid",
        ),
    )

    experiment: Literal["regression"] = "regression"
    data: DataSpec
    loss: LpLoss
    train: Train
    models: list[ModelSpec] = Field(..., min_length=1, max_length=64)
    tune: Tune

    def model(self, name: str) -> LinearNet | EndToEndModel | WarmupFormModel:
        return next(m for m in self.models if m.name == name)

    def lr_grid(self, name: str) -> list[float]:
        """The model's learning rates, ascending."""
        own = self.model(name).lr
        return sorted(own) if own else self.tune.lr

    def budget(self) -> str:
        train = self.train
        return f"{train.steps:,} steps" if train.steps is not None else f"a horizon η·steps = {train.horizon:g}"

    def declared_run_steps(self) -> int:
        per_seed = sum(self.train.schedule(lr)[0] for m in self.models for lr in self.lr_grid(m.name))
        return per_seed * len(self.seeds)

    @property
    def all_lrs(self) -> list[float]:
        return sorted({lr for m in self.models for lr in self.lr_grid(m.name)})

    def loss_of(self, name: str) -> LpLoss:
        return self.model(name).loss or self.loss

    @property
    def exponents(self) -> list[float]:
        """The distinct ℓp exponents of the models, in first-seen order."""
        return list(dict.fromkeys(self.loss_of(m.name).p for m in self.models))

    def records_step(self, name: str, step: int) -> bool:
        for lr in self.lr_grid(name):
            steps, every = self.train.schedule(lr)
            if step > steps or step % every:
                return False
        return True

    def reference_errors(self) -> list[tuple[KeyPath, str]]:
        problems = super().reference_errors()
        if self.tune.refine is not None and self.train.horizon is not None:
            problems.append((("tune", "refine"), "refined lrs would not fit the horizon schedule; use train.steps, or drop refine"))
        for i, lr in enumerate(self.tune.lr):
            if why := self.train.schedule_error(lr):
                problems.append((("tune", "lr", i), why))
        for i, model in enumerate(self.models):
            for j, lr in enumerate(model.lr or []):
                if why := self.train.schedule_error(lr):
                    problems.append((("models", i, "lr", j), why))
            if model.lr and len(set(model.lr)) != len(model.lr):
                problems.append((("models", i, "lr"), "the grid repeats a value"))
            if isinstance(model, LinearNet):
                continue
            if not isinstance(self.train.optimizer, GradientDescent):
                problems.append(
                    (("models", i, "kind"), f"a {model.kind} model takes plain GD steps; set train.optimizer to gd and override per model")
                )
            if isinstance(model, WarmupFormModel) and self.train.weight_decay:
                problems.append((("models", i, "kind"), "the warm-up form has no weight decay; set train.weight_decay to 0"))
        for i, check in enumerate(self.checks):
            if check.read_curve() == "end_to_end" and not self.train.record_end_to_end:
                problems.append((("checks", i, "curve"), "comparing end-to-end vectors needs train.record_end_to_end: true"))
        return problems
