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


class LinearNet(BaseModel):
    """`kind: linear_net`: x ↦ W_N⋯W_1 x, hidden width `width`, trained by GD on its layers."""

    model_config = STRICT
    kind: Literal["linear_net"]
    name: str = Field(..., min_length=1, max_length=60)
    depth: int = Field(..., ge=1, le=64)
    width: int = Field(100, ge=1, le=4096, description="hidden width (unused at depth 1)")
    init: Init | None = Field(None, description="overrides train.init for this model")


class EndToEndModel(BaseModel):
    """`kind: end_to_end`: a depth-1 model moved by the end-to-end rule (12) of depth `depth`."""

    model_config = STRICT
    kind: Literal["end_to_end"]
    name: str = Field(..., min_length=1, max_length=60)
    depth: int = Field(..., ge=1, le=64)
    init: Init | None = None


ModelSpec = Annotated[LinearNet | EndToEndModel, Field(discriminator="kind")]
DataSpec = Annotated[UciGasData | SyntheticData, Field(discriminator="kind")]


class GradientDescent(BaseModel):
    model_config = STRICT
    kind: Literal["gd"]


class Train(BaseModel):
    model_config = STRICT
    optimizer: GradientDescent = GradientDescent(kind="gd")
    steps: int = Field(..., ge=1, le=100_000_000)
    record_every: int = Field(100, ge=1)
    init: Init = NormalInit(kind="normal", std=0.01)
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)
    dtype: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _records_fit(self) -> Train:
        if self.steps % self.record_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of record_every ({self.record_every})")
        if self.steps // self.record_every > 100_000:
            raise ValueError("more than 100000 recorded points; raise record_every")
        return self


class Tune(BaseModel):
    """Per-model learning rate: every value of the grid is run; `pick` chooses one per model.

    Seeds combine by the median of the pick metric; an lr where any seed diverged is never picked.
    """

    model_config = STRICT
    lr: list[Annotated[float, Field(gt=0.0, le=1e3)]] = Field(..., min_length=1, max_length=64)
    pick: Literal["lowest_final_gap", "lowest_mean_log_gap"] = "lowest_final_gap"

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

    def model(self, name: str) -> LinearNet | EndToEndModel:
        return next(m for m in self.models if m.name == name)


def reference_errors(spec: Spec) -> list[tuple[Path_, str]]:
    """Problems between fields: names that must exist, seeds that must be distinct."""
    problems: list[tuple[Path_, str]] = []
    names = [m.name for m in spec.models]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((("models", i, "name"), f"model name {name!r} is used twice"))
    if len(set(spec.seeds)) != len(spec.seeds):
        problems.append((("seeds",), "seeds repeat a value"))
    for i, check in enumerate(spec.checks):
        for key, name in check.model_refs():
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"models are {', '.join(names)}"
                problems.append((("checks", i) + key, f"no model named {name!r}; {fix}"))
    for name in spec.paper.final_gap:
        if name not in names:
            problems.append((("paper", "final_gap", name), f"no model named {name!r}"))
    return problems


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
    hint = difflib.get_close_matches(key, sorted(_all_field_names()), n=1)
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
