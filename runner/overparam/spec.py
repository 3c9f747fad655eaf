"""The spec: typed data for one claim, parsed once from YAML and passed explicitly.

Every model forbids unknown keys and is frozen. `load_spec` turns every problem in a file
into one located line `file:line:col: key.path: message`, all of them, never a traceback.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from overparam.checks import Check
from overparam.engine.init import Init, NormalInit
from overparam.engine.optim import GradientDescent, Optimizer
from overparam.errors import OverparamError
from overparam.losses import LpLoss
from overparam.synthetic import SyntheticData
from overparam.uci import UciGasData
from overparam.yamlpos import Path_, Positions, dotted, load_yaml

STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PaperRef(BaseModel):
    """Where the claim is in the paper and the numbers it reports (read off its log plots)."""

    model_config = STRICT
    section: str
    figure: str = ""
    statement: str = Field("", description="what the paper's figure shows, in words")
    final_gap: dict[str, float] = Field(default_factory=dict, description="model name -> L − L* the paper reports")
    at_step: int | None = Field(None, ge=1, description="the step those numbers are read at")


class Verdict(BaseModel):
    """What we conclude about the paper's claim. The checks state the evidence behind it: if
    they fail, the observation changed and the verdict must be revisited."""

    model_config = STRICT
    status: Literal["reproduced", "partly reproduced", "not reproduced", "by checks"] = Field(
        ..., description="`by checks`: the checks state the paper's own claim, so they decide (for profiles not yet run)"
    )
    observed: str = Field("", description="what we observe, in words; required for partly / not reproduced")

    def decided(self, passed: bool) -> str:
        """The status to show, given whether every check passed."""
        if self.status != "by checks":
            return self.status
        return "reproduced" if passed else "not reproduced"

    @model_validator(mode="after")
    def _explained(self) -> Verdict:
        if self.status in ("partly reproduced", "not reproduced") and not self.observed.strip():
            raise ValueError(f"a verdict of {self.status!r} needs `observed:` saying what we see instead")
        return self


class _Model(BaseModel):
    """What every model kind has: a name, and per-model overrides of the spec's defaults."""

    model_config = STRICT
    name: str = Field(..., min_length=1, max_length=60)
    init: Init | None = Field(None, description="overrides train.init for this model")
    loss: LpLoss | None = Field(None, description="overrides the spec's loss for this model")
    lr: list[Annotated[float, Field(gt=0.0, le=1e3)]] | None = Field(
        None, min_length=1, max_length=64, description="this model's own lr grid (e.g. for another optimizer); default tune.lr"
    )


class LinearNet(_Model):
    """`kind: linear_net`: x ↦ W_N⋯W_1 x, hidden width `width`, trained on its layers."""

    kind: Literal["linear_net"]
    depth: int = Field(..., ge=1, le=64)
    width: int = Field(100, ge=1, le=4096, description="hidden width (unused at depth 1)")
    optimizer: Optimizer | None = Field(None, description="overrides train.optimizer for this model")


class EndToEndModel(_Model):
    """`kind: end_to_end`: a depth-1 model moved by the end-to-end rule (12) or (10) of depth `depth`."""

    kind: Literal["end_to_end"]
    depth: int = Field(..., ge=1, le=64)
    rule: Literal[10, 12] = Field(12, description="12: the single-output form; 10: the general form with matrix powers")


class WarmupFormModel(_Model):
    """`kind: warmup_form`: §3's adaptive-lr + momentum form of GD on w = w₁·ω₂, started from
    the same weights as a depth-2, width-1 linear_net with the same init and seed."""

    kind: Literal["warmup_form"]


ModelSpec = Annotated[LinearNet | EndToEndModel | WarmupFormModel, Field(discriminator="kind")]
DataSpec = Annotated[UciGasData | SyntheticData, Field(discriminator="kind")]


class Train(BaseModel):
    """How every run trains. Either a fixed `steps` count, or a fixed `horizon` η·steps so that
    runs at different learning rates cover the same stretch of the gradient flow."""

    model_config = STRICT
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
    """

    model_config = STRICT
    lr: list[Annotated[float, Field(gt=0.0, le=1e3)]] = Field(..., min_length=1, max_length=64)
    pick: Literal["lowest_final_gap", "lowest_mean_log_gap", "smallest"] = Field(
        "lowest_final_gap", description="smallest: the smallest lr of the grid (for fidelity specs, where every lr is compared)"
    )

    @field_validator("lr")
    @classmethod
    def _distinct(cls, grid: list[float]) -> list[float]:
        if len(set(grid)) != len(grid):
            raise ValueError("the grid repeats a value")
        return sorted(grid)


class Spec(BaseModel):
    model_config = STRICT
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=60)
    title: str
    claim: str
    paper: PaperRef
    verdict: Verdict
    group: Literal["experiments", "theory"] = "experiments"
    data: DataSpec
    loss: LpLoss
    train: Train
    models: list[ModelSpec] = Field(..., min_length=1, max_length=64)
    tune: Tune
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(..., min_length=1, max_length=100)
    checks: list[Check] = Field(..., min_length=1, max_length=100)
    assumptions: list[str] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name -> overrides of this spec's keys")

    def model(self, name: str) -> LinearNet | EndToEndModel | WarmupFormModel:
        return next(m for m in self.models if m.name == name)

    def lr_grid(self, name: str) -> list[float]:
        """The model's learning rates, ascending."""
        own = self.model(name).lr
        return sorted(own) if own else self.tune.lr

    @property
    def all_lrs(self) -> list[float]:
        return sorted({lr for m in self.models for lr in self.lr_grid(m.name)})

    def loss_of(self, name: str) -> LpLoss:
        return self.model(name).loss or self.loss

    @property
    def exponents(self) -> list[float]:
        """The distinct ℓp exponents of the models, in first-seen order."""
        return list(dict.fromkeys(self.loss_of(m.name).p for m in self.models))


def reference_errors(spec: Spec) -> list[tuple[Path_, str]]:
    """Problems between fields: names that must exist, seeds that must be distinct."""
    problems: list[tuple[Path_, str]] = []
    names = [m.name for m in spec.models]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((("models", i, "name"), f"model name {name!r} is used twice"))
    if len(set(spec.seeds)) != len(spec.seeds):
        problems.append((("seeds",), "seeds repeat a value"))
    for i, lr in enumerate(spec.tune.lr):
        if why := spec.train.schedule_error(lr):
            problems.append((("tune", "lr", i), why))
    for i, model in enumerate(spec.models):
        for j, lr in enumerate(model.lr or []):
            if why := spec.train.schedule_error(lr):
                problems.append((("models", i, "lr", j), why))
        if model.lr and len(set(model.lr)) != len(model.lr):
            problems.append((("models", i, "lr"), "the grid repeats a value"))
    for i, check in enumerate(spec.checks):
        if getattr(check, "curve", None) == "end_to_end" and not spec.train.record_end_to_end:
            problems.append((("checks", i, "curve"), "comparing end-to-end vectors needs train.record_end_to_end: true"))
        lr = getattr(check, "lr", None)
        lacking = [name for _, name in check.model_refs() if name in names and lr is not None and lr not in spec.lr_grid(name)]
        if lacking:
            problems.append((("checks", i, "lr"), f"lr {lr:g} is not in the lr grid of {', '.join(map(repr, lacking))}"))
        at_step = getattr(check, "at_step", None)
        off_grid = [name for _, name in check.model_refs() if name in names and at_step is not None and not _recorded(spec, name, at_step)]
        if off_grid:
            problems.append(
                (
                    ("checks", i, "at_step"),
                    f"step {at_step} is not a recorded step of {', '.join(map(repr, off_grid))}; use a multiple of record_every",
                )
            )
        for key, name in check.model_refs():
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"models are {', '.join(names)}"
                problems.append((("checks", i) + key, f"no model named {name!r}; {fix}"))
    if not isinstance(spec.train.optimizer, GradientDescent):
        for i, model in enumerate(spec.models):
            if isinstance(model, EndToEndModel):
                problems.append(
                    (("models", i, "kind"), "an end_to_end model takes plain GD steps; set train.optimizer to gd and override per model")
                )
    for name in spec.paper.final_gap:
        if name not in names:
            problems.append((("paper", "final_gap", name), f"no model named {name!r}"))
    return problems


def _recorded(spec: Spec, name: str, step: int) -> bool:
    """Whether `step` is recorded at every lr of the model's grid."""
    for lr in spec.lr_grid(name):
        steps, every = spec.train.schedule(lr)
        if step > steps or step % every:
            return False
    return True


def load_spec(path: Path, profile: str | None = None) -> Spec:
    """Parse and validate `path`, with profile `profile` applied; OverparamError lists every problem."""
    raw, positions = load_yaml(path)
    base = _validated(raw, path, positions, lambda at: at)
    if profile is None:
        return base
    if profile not in base.profiles:
        known = ", ".join(base.profiles) or "none"
        raise OverparamError(f"{path}: no profile {profile!r} (profiles: {known}); drop --profile or add it under profiles")
    return _with_profile(raw, profile, path, positions)


def check_all_profiles(path: Path) -> Spec:
    """Validate the spec and every profile in it; raise once with all problems."""
    raw, positions = load_yaml(path)
    base = _validated(raw, path, positions, lambda at: at)
    problems: list[str] = []
    for name in base.profiles:
        try:
            _with_profile(raw, name, path, positions)
        except OverparamError as err:
            problems.extend(err.lines)
    if problems:
        raise OverparamError(*problems)
    return base


def _with_profile(raw: dict[str, Any], name: str, path: Path, positions: Positions) -> Spec:
    overrides = raw["profiles"][name] or {}
    merged = _deep_merged(raw, overrides)

    def origin(at: Path_) -> Path_:
        inside = _has_path(overrides, at)
        return ("profiles", name) + at if inside else at

    return _validated(merged, path, positions, origin)


def _validated(raw: dict[str, Any], path: Path, positions: Positions, origin: Any) -> Spec:
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as err:
        raise OverparamError(*(_error_line(e, raw, path, positions, origin) for e in err.errors())) from None
    problems = reference_errors(spec)
    if problems:
        raise OverparamError(*(_located(path, positions, origin(at), at, msg) for at, msg in problems))
    return spec


def _error_line(error: Any, raw: Any, path: Path, positions: Positions, origin: Any) -> str:
    at = _data_path(error["loc"], raw)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = _unknown_key_message(str(at[-1]))
    elif error["type"] == "missing":
        message = "required key is missing; add it"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown kind {error['input'].get('kind')!r}; expected one of {error['ctx']['expected_tags']}"
    elif error["type"] == "union_tag_not_found":
        message = "needs a `kind` key"
    return _located(path, positions, origin(at), at, message)


def _data_path(loc: tuple[Any, ...], raw: Any) -> Path_:
    """Pydantic's loc without union tags: only the steps that exist in the data (plus a missing leaf)."""
    at: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            at.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            at.append(part)
        elif i == len(loc) - 1 and isinstance(part, (str, int)):
            at.append(part)  # a missing key: shown, located at its parent
    return tuple(at)


def _located(path: Path, positions: Positions, where: Path_, shown: Path_, message: str) -> str:
    for n in range(len(where), -1, -1):
        if where[:n] in positions:
            line, col = positions[where[:n]]
            break
    else:
        line, col = 1, 1
    return f"{path}:{line}:{col}: {dotted(shown)}: {message}"


def _unknown_key_message(key: str) -> str:
    names = _all_field_names()
    if key in names:
        return f"{key!r} is not a key here; remove it or move it where it belongs"
    hint = difflib.get_close_matches(key, sorted(names), n=1)
    return f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "; remove it")


def _all_field_names() -> set[str]:
    schema = Spec.model_json_schema()
    names: set[str] = set(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        names.update(definition.get("properties", {}))
    return names


def _deep_merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied: mappings merge key by key, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _has_path(tree: Any, at: Path_) -> bool:
    for part in at:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return False
    return True
