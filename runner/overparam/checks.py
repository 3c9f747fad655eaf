"""Assertion kinds: typed data in the spec, evaluated over the selected results of its models.
The metric checks live here (order, ratio, bound), the curve checks in `curve_checks`, what they
share in `checkbase`; `Check` is the union a spec's `checks:` takes, `evaluate` the one entry."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field, model_validator

from overparam.checkbase import (
    DECIDES_TEXT,
    ROLE_TEXT,
    STEPS_TO_GAP,
    Bounds,
    CheckResult,
    MetricCheck,
    Refs,
    Role,
    SpecCheck,
    Stability,
    StatementId,
    fmt,
    relative_distance,
    span,
)
from overparam.curve_checks import CloseCheck, ConvergesCheck, OvertakesCheck, fitted_order, overtaking_step
from overparam.results import ModelResult, Results, median
from overparam.strict import given, strict_with

__all__ = [
    "DECIDES_TEXT",
    "ROLE_TEXT",
    "Bounds",
    "Check",
    "CheckResult",
    "CloseCheck",
    "ConvergesCheck",
    "OrderCheck",
    "OvertakesCheck",
    "RatioCheck",
    "BoundCheck",
    "Role",
    "SpecCheck",
    "Stability",
    "StatementId",
    "evaluate",
    "fitted_order",
    "overtaking_step",
    "relative_distance",
    "span",
]

class OrderCheck(MetricCheck):
    """`models` listed best first: the metric strictly increases along the list."""

    kind: Literal["order"]
    models: list[str] = Field(..., min_length=2)

    def model_refs(self) -> Refs:
        return [(("models", i), name) for i, name in enumerate(self.models)]

    def statement(self) -> str:
        return f"{self.metric_text()}: " + " < ".join(self.models) + self.seeds_text() + self.lr_text()

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        rows = list(zip(*(self.values(results[name]) for name in self.models)))
        holds = [all(a < b for a, b in zip(row, row[1:])) for row in rows]
        evidence = "; ".join(
            self.seed_label(results, i) + " < ".join(fmt(v) for v in row) + ("" if ok else " ✗")
            for i, (row, ok) in enumerate(zip(rows, holds))
        )
        margin = min(relative_distance(a, b) for row in rows for a, b in zip(row, row[1:]))
        key = " < ".join(f"{name} {median(list(column)):.3g}" for name, column in zip(self.models, zip(*rows)))
        return CheckResult(all(holds), self.statement(), evidence, tuple(v for row in rows for v in row), margin, key=key)


class RatioCheck(MetricCheck):
    """metric(model) / metric(over) ≥ at_least and/or ≤ at_most."""

    model_config = strict_with(STEPS_TO_GAP | given("at_least", "at_most"))
    kind: Literal["ratio"]
    model: str
    over: str
    at_least: float | None = Field(None, gt=0.0)
    at_most: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _has_bound(self) -> RatioCheck:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a ratio check needs at_least or at_most")
        return self

    def model_refs(self) -> Refs:
        return [(("model",), self.model), (("over",), self.over)]

    def bounds(self) -> Bounds:
        return Bounds(self.at_least, self.at_most)

    def statement(self) -> str:
        return f"{self.metric_text()} of {self.model} / {self.over} {self.bounds().text()}{self.seeds_text()}{self.lr_text()}"

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        ratios = [_ratio_of(a, b) for a, b in zip(self.values(results[self.model]), self.values(results[self.over]))]
        holds = [self.bounds().holds(r) for r in ratios]
        evidence = "; ".join(
            self.seed_label(results, i) + f"ratio {fmt(r)}" + ("" if ok else " ✗") for i, (r, ok) in enumerate(zip(ratios, holds))
        )
        margin = min(self.bounds().margin(r) for r in ratios)
        return CheckResult(all(holds), self.statement(), evidence, tuple(ratios), margin, key=f"{self._metric_label()}{self.model}/{self.over} {span(ratios)}×")


class BoundCheck(MetricCheck):
    """lo ≤ metric(model) ≤ hi."""

    model_config = strict_with(STEPS_TO_GAP | given("lo", "hi"))
    kind: Literal["bound"]
    model: str
    lo: float | None = None
    hi: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> BoundCheck:
        if self.lo is None and self.hi is None:
            raise ValueError("a bound check needs lo or hi")
        return self

    def model_refs(self) -> Refs:
        return [(("model",), self.model)]

    def bounds(self) -> Bounds:
        return Bounds(self.lo, self.hi)

    def statement(self) -> str:
        return f"{self.metric_text()} of {self.model} {self.bounds().text()}{self.seeds_text()}{self.lr_text()}"

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        values = self.values(results[self.model])
        holds = [self.bounds().holds(v) for v in values]
        evidence = "; ".join(self.seed_label(results, i) + fmt(v) + ("" if ok else " ✗") for i, (v, ok) in enumerate(zip(values, holds)))
        margin = min(self.bounds().margin(v) for v in values)
        return CheckResult(all(holds), self.statement(), evidence, tuple(values), margin, key=f"{self.model} {self.metric} {span(values)}")


Check = Annotated[OrderCheck | RatioCheck | BoundCheck | CloseCheck | OvertakesCheck | ConvergesCheck, Field(discriminator="kind")]


def evaluate(check: Check, results: Results) -> CheckResult:
    result = check.evaluate(results)
    key = result.key + (f" vs the paper's {_paper_text(check)}" if check.paper and result.key else "")
    return replace(result, role=check.role, decides=check.decides, key=key)


def _paper_text(check: Check) -> str:
    """The paper's reading of what `check` reads: "≈5.8×", "≈200,000–250,000"."""
    if isinstance(check, OvertakesCheck):
        return "≈" + "–".join(f"{v:,.0f}" for v in check.paper)
    return "≈" + "–".join(f"{v:.3g}" for v in check.paper) + ("×" if isinstance(check, RatioCheck) else "")


def _ratio_of(a: float, b: float) -> float:
    """a / b; no ratio (NaN, which holds no bound) when both are 0, e.g. two gaps at L* within rounding."""
    if b == 0:
        return math.inf if a > 0 else (math.nan if a == 0 else -math.inf)
    return a / b
