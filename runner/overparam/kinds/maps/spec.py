"""A map spec (`experiment: map`): where does depth accelerate? One row axis × depth.

Each cell is a depth-N linear net and the depth-1 model on the same row (same loss, init,
width and data), both with their lr tuned on the row's grid; the cell's value is the speed-up
final L − L* of depth 1 over final L − L* of depth N at the step budget, per seed. Region
checks state claims over sets of cells ("for p ≥ 4 and depth 2–3, speed-up > 1 everywhere").
Each row expands into an ordinary regression `RegressionSpec`, so runs, tuning and the store are shared
with every other spec.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, model_validator

from overparam.checks import DECIDES_TEXT, ROLE_TEXT, Role, SpecCheck, StatementId
from overparam.claim import CLAIM_RULES, Claim
from overparam.data import DataSpec
from overparam.engine.init import NormalInit
from overparam.losses import LpLoss
from overparam.strict import STRICT, UNIQUE, equals, given, strict_with, when
from overparam.sweep.models import LinearNet
from overparam.sweep.spec import RegressionSpec, Train, Tune
from overparam.yamlpos import KeyPath

Axis = Literal["p", "init_std", "width", "data"]
Lrs = list[Annotated[float, Field(gt=0.0, le=1e3)]]
BASELINE_DEPTH = 1


class Level(BaseModel):
    """One row of the map: a value of the row axis, and the lr grid where its loss scale needs its own."""

    model_config = STRICT
    value: float | DataSpec = Field(..., description="p, init std, width, or a data entry (kind: ...)")
    label: str = Field("", max_length=60, description="the row's name in the report (default: the value)")
    lr: Lrs | None = Field(None, min_length=1, max_length=64, json_schema_extra=UNIQUE, description="this row's lr grid (default tune.lr)")

    def name(self, axis: Axis) -> str:
        if self.label:
            return self.label
        if isinstance(self.value, float):
            return f"{axis} = {self.value:g}"
        return self.value.label()


def _levels_take(value: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"levels": {"items": {"properties": {"value": value}}}}}


def _out_of_range(axis: Axis, value: float) -> str:
    """Why a numeric level does not fit its axis ("" when it does)."""
    if axis == "p" and not 2.0 <= value <= 64.0:
        return "p must lie in [2, 64]"
    if axis == "init_std" and not 0.0 < value <= 10.0:
        return "an init std must lie in (0, 10]"
    if axis == "width" and (value != int(value) or not 1 <= value <= 4096):
        return "a width is a whole number in [1, 4096]"
    return ""


class Rows(BaseModel):
    model_config = strict_with(
        {
            "allOf": [
                when(equals("axis", "data"), _levels_take({"type": "object"})),
                when(equals("axis", "p"), _levels_take({"type": "number", "minimum": 2, "maximum": 64})),
                when(equals("axis", "init_std"), _levels_take({"type": "number", "exclusiveMinimum": 0, "maximum": 10})),
                when(equals("axis", "width"), _levels_take({"type": "number", "multipleOf": 1, "minimum": 1, "maximum": 4096})),
            ]
        },
        rules=("levels have distinct names (the label, or else the value)",),
    )
    axis: Axis
    levels: list[Level] = Field(..., min_length=1, max_length=32)

    @model_validator(mode="after")
    def _values_fit_the_axis(self) -> Rows:
        for i, level in enumerate(self.levels):
            value = level.value
            if (self.axis == "data") != (not isinstance(value, float)):
                want = "a data entry like {kind: uci_gas, gas_class: 2}" if self.axis == "data" else "a number"
                raise ValueError(f"levels[{i}].value: the {self.axis} axis takes {want}")
            if isinstance(value, float) and (why := _out_of_range(self.axis, value)):
                raise ValueError(f"levels[{i}].value: {why}")
            if level.lr and len(set(level.lr)) != len(level.lr):
                raise ValueError(f"levels[{i}].lr: the grid repeats a value")
        names = [level.name(self.axis) for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("two levels have the same name; give them distinct `label`s")
        return self


class Range(BaseModel):
    """Which levels of one axis a region covers: numeric bounds, or the listed row names."""

    model_config = STRICT
    at_least: float | None = None
    at_most: float | None = None
    in_: list[float | str] | None = Field(None, alias="in", min_length=1)

    def covers(self, value: float | None, name: str) -> bool:
        if self.in_ is not None:
            return name in self.in_ or (value is not None and value in self.in_)
        if value is None:
            return False
        return (self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)


class RegionCheck(SpecCheck):
    """Every cell of the region has speed-up above `above` and/or below `below` (every seed,
    or the median over seeds)."""

    model_config = strict_with(given("above", "below"))
    kind: Literal["region"]
    says: str = ""
    where: dict[str, Range] = Field(default_factory=dict, description="axis name (depth or the row axis) -> range; empty = every cell")
    above: float | None = Field(None, gt=0.0)
    below: float | None = Field(None, gt=0.0)
    seeds: Literal["all", "median"] = "all"
    role: Role = Field("claim", description=ROLE_TEXT)
    decides: StatementId | None = Field(None, description=DECIDES_TEXT)

    @model_validator(mode="after")
    def _has_bound(self) -> RegionCheck:
        if self.above is None and self.below is None:
            raise ValueError("a region check needs above or below")
        return self


class MapTune(BaseModel):
    """The lr grid of rows without their own, and the pick rule (as a regression spec's `tune`)."""

    model_config = STRICT
    lr: Lrs | None = Field(None, min_length=1, max_length=64)
    pick: Literal["lowest_final_gap", "lowest_mean_log_gap"] = "lowest_final_gap"
    refine: int | None = Field(None, ge=1, le=8, description="bracket each cell's picks within a factor 2^(1/refine) of their neighbours")


class MapSpec(Claim):
    model_config = strict_with(
        {
            "allOf": [
                {"properties": {"train": {"required": ["steps"], "properties": {"steps": {"type": "integer"}}}}},
                when(
                    {"required": ["rows"], "properties": {"rows": equals("axis", "init_std")}},
                    {"properties": {"train": {"properties": {"init": {"properties": {"kind": {"const": "normal"}}}}}}},
                ),
                when(
                    {"not": {"required": ["tune"], "properties": {"tune": {"required": ["lr"], "properties": {"lr": {"type": "array"}}}}}},
                    {
                        "properties": {
                            "rows": {"properties": {"levels": {"items": {"required": ["lr"], "properties": {"lr": {"type": "array"}}}}}}
                        }
                    },
                ),
            ]
            + [
                when(
                    {"required": ["rows"], "properties": {"rows": equals("axis", axis)}},
                    {"properties": {"checks": {"items": {"properties": {"where": {"propertyNames": {"enum": ["depth", axis]}}}}}}},
                )
                for axis in get_args(Axis)
            ],
        },
        rules=CLAIM_RULES + ("each check's region holds at least one cell of the map",),
    )
    experiment: Literal["map"]
    group: Literal["experiments", "theory", "maps"] = "maps"
    data: DataSpec
    loss: LpLoss
    train: Train
    width: int = Field(100, ge=1, le=4096, description="hidden width of every net (unless width is the row axis)")
    depths: list[Annotated[int, Field(ge=2, le=64)]] = Field(
        ..., min_length=1, max_length=16, json_schema_extra=UNIQUE, description="compared with depth 1, always run"
    )
    rows: Rows
    tune: MapTune = MapTune()
    checks: list[RegionCheck] = Field(..., min_length=1, max_length=100)  # type: ignore[assignment]  # a kind narrows Claim's checks to its own

    def model_names(self) -> list[str]:
        return [depth_name(n) for n in self.all_depths]

    def budget(self) -> str:
        return f"{self.train.steps:,} steps" if self.train.steps is not None else ""

    def declared_run_steps(self) -> int:
        return sum(self.row_spec(level).declared_run_steps() for level in self.rows.levels)

    @property
    def all_depths(self) -> list[int]:
        return [BASELINE_DEPTH, *sorted(set(self.depths))]

    def reference_errors(self) -> list[tuple[KeyPath, str]]:
        problems = super().reference_errors()
        if self.train.steps is None:
            problems.append((("train",), "a map compares models at a step budget: give train.steps, not horizon"))
        if self.rows.axis == "init_std" and not isinstance(self.train.init, NormalInit):
            problems.append((("train", "init"), "the init_std axis scales a normal init; set train.init.kind to normal"))
        for i, level in enumerate(self.rows.levels):
            if level.lr is None and self.tune.lr is None:
                problems.append((("rows", "levels", i), "this level has no lr grid: give it `lr: [...]` or set tune.lr"))
        if len(set(self.depths)) != len(self.depths):
            problems.append((("depths",), "depths repeat a value"))
        axes = ("depth", self.rows.axis)
        for i, check in enumerate(self.checks):
            for key in check.where:
                if key not in axes:
                    problems.append((("checks", i, "where", key), f"no axis {key!r}; this map's axes are {' and '.join(axes)}"))
            if all(key in axes for key in check.where) and not self.cells_in(check):
                problems.append((("checks", i, "where"), "the region holds no cell of this map"))
        return problems

    def level_value(self, level: Level) -> float | None:
        return None if self.rows.axis == "data" else float(level.value)  # type: ignore[arg-type]  # numeric on every axis but data (Rows checks)

    def cells_in(self, check: RegionCheck) -> list[tuple[str, int]]:
        """(row name, depth) of every cell the region covers."""
        cells = []
        for level in self.rows.levels:
            name = level.name(self.rows.axis)
            row_range = check.where.get(self.rows.axis)
            if row_range is not None and not row_range.covers(self.level_value(level), name):
                continue
            depth_range = check.where.get("depth")
            cells += [(name, n) for n in sorted(set(self.depths)) if depth_range is None or depth_range.covers(float(n), str(n))]
        return cells

    def row_spec(self, level: Level) -> RegressionSpec:
        """The regression spec of one row: depth 1 and every depth of the map, on this row's setting."""
        axis, value = self.rows.axis, level.value
        # On the p, init_std and width axes the value is a number (Rows checks it).
        width = int(value) if axis == "width" else self.width  # type: ignore[arg-type]
        loss = LpLoss(kind="lp", p=float(value)) if axis == "p" else self.loss  # type: ignore[arg-type]
        init = NormalInit(kind="normal", std=float(value)) if axis == "init_std" else self.train.init  # type: ignore[arg-type]
        data = value if axis == "data" else self.data
        models = [LinearNet(kind="linear_net", name=depth_name(n), depth=n, width=width) for n in self.all_depths]
        fields: dict[str, Any] = {
            **{name: getattr(self, name) for name in ("id", "title", "claim", "paper", "verdict", "seeds", "assumptions")},
            "checks": [],
            "profiles": {},
            "experiment": "regression",
            "group": "experiments",
            "data": data,
            "loss": loss,
            "train": self.train.model_copy(update={"init": init}),
            "models": models,
            "tune": Tune(
                lr=level.lr or self.tune.lr or [], pick=self.tune.pick, refine=self.tune.refine
            ),  # reference_errors: one of the two is set
        }
        # Every part was validated above or when this spec loaded; the row only recombines them.
        return RegressionSpec.model_construct(**fields)


def depth_name(depth: int) -> str:
    return f"depth {depth}"
