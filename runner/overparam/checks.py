"""Assertion kinds: typed data in the spec, evaluated over the selected results of its models.

Seeds combine per check: `all` (default) means the relation must hold for every seed on its
own; `median` applies it once to the median over seeds. Every result carries the numbers
that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, Field, model_validator

from overparam.results import Metric, ModelResult, Results, max_rel_dev, median, metric_per_seed
from overparam.strict import STRICT, equals, given, strict_with, when

SeedRule = Literal["all", "median"]
Refs = list[tuple[tuple[str | int, ...], str]]
STEPS_TO_GAP = when(
    equals("metric", "steps_to_gap"), {"required": ["gap"], "properties": {"gap": {"type": "number"}, "at_step": {"type": "null"}}}
)


Role = Literal["claim", "observation"]
ROLE_TEXT = "claim: states the paper's claim (decides the verdict); observation: pins what we observe (must hold, decides nothing)"
DECIDES_TEXT = "the id of the spec's statement (`statements:`) this claim check decides; observations decide none"
StatementId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


@dataclass(frozen=True)
class Stability:
    """Whether a check's outcome survives moving each pick one lr step lower (else *fragile*) and
    a one-ulp change of the data (else *chaotic*); None where it was not assessed (`why` says)."""

    fragile: bool | None
    fragile_text: str
    chaotic: bool | None
    chaotic_text: str

    @property
    def shaky(self) -> bool:
        return bool(self.fragile or self.chaotic)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    statement: str  # the relation, e.g. "final_gap: 3-layer < 2-layer < 1-layer"
    evidence: str  # the numbers that decided it
    values: tuple[float, ...] = ()  # those numbers, for comparing with a perturbed twin
    margin: float = math.inf  # how far (relative) the closest value is from flipping the outcome
    role: Role = "claim"
    stability: Stability | None = None  # None: the kind has nothing to move (no tuned lr, no data)
    decides: str | None = None  # the id of the statement it decides (claim checks of a spec with statements)
    key: str = ""  # its numbers in a few characters, for a report's summary ("2.01–2.02×", "at step 65,000–70,000")


@dataclass(frozen=True)
class Bounds:
    """low ≤ value ≤ high (or < with `strict`), either side optional: the one bounds rule and its
    one wording, for every check kind with bounds (ratio, bound, theory values, map regions)."""

    low: float | None
    high: float | None
    strict: bool = False

    def holds(self, value: float) -> bool:
        if self.strict:
            return (self.low is None or value > self.low) and (self.high is None or value < self.high)
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def margin(self, value: float) -> float:
        """Relative distance from `value` to the nearer bound."""
        sides = [b for b in (self.low, self.high) if b is not None]
        return min(relative_distance(value, b) for b in sides)

    def text(self) -> str:
        above, below = (">", "<") if self.strict else ("≥", "≤")
        sides = (f"{above} {self.low:g}" if self.low is not None else "", f"{below} {self.high:g}" if self.high is not None else "")
        return " and ".join(side for side in sides if side)


class _ModelCheck(BaseModel):
    """A check on the results of named models: each is read at its picked lr (or at `lr`), then
    `judge` decides; a model without usable runs fails the check, with the reason."""

    model_config = STRICT
    role: Role = Field("claim", description=ROLE_TEXT)
    decides: StatementId | None = Field(None, description=DECIDES_TEXT)
    paper: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=list, max_length=2, description="the paper's value of what the check reads (one reading, or its low and high), shown beside ours"
    )

    def model_refs(self) -> Refs:
        """(key path in the check, model name) of every model the check reads."""
        raise NotImplementedError

    def statement(self) -> str:
        raise NotImplementedError

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        raise NotImplementedError

    def evaluate(self, results: Results) -> CheckResult:
        lr = getattr(self, "lr", None)
        chosen = {name: results.at(name, lr) for _, name in self.model_refs()}
        missing = [name for name, result in chosen.items() if result.lr is None]
        if missing:
            reasons = "; ".join(f"{n}: {chosen[n].why_none}" for n in missing)
            return CheckResult(False, self.statement(), f"no usable runs ({reasons})")
        return self.judge(chosen)

    def seed_label(self, results: dict[str, ModelResult], index: int) -> str:
        if getattr(self, "seeds", "all") == "median":
            return "median: "
        seeds = next(iter(results.values())).seeds
        return f"seed {seeds[index]}: " if len(seeds) > 1 else ""

    def lr_text(self) -> str:
        lr = getattr(self, "lr", None)
        return f" at lr {lr:g}" if lr else ""


class _MetricCheck(_ModelCheck):
    model_config = strict_with(STEPS_TO_GAP)
    metric: Metric
    gap: float | None = Field(None, gt=0.0, description="threshold for steps_to_gap")
    seeds: SeedRule = "all"
    lr: float | None = Field(None, gt=0.0, description="read every model at this lr of the grid instead of its picked one")
    at_step: int | None = Field(None, ge=0, description="read final_loss / final_gap / gap_ratio / final_batch_loss at this recorded step, not the end")
    says: str = Field("", description="the claim this check states, in words")

    @model_validator(mode="after")
    def _gap_for_steps(self) -> _MetricCheck:
        if self.metric == "steps_to_gap" and self.gap is None:
            raise ValueError("metric steps_to_gap needs `gap: <threshold>`")
        if self.metric == "steps_to_gap" and self.at_step is not None:
            raise ValueError("at_step does not apply to steps_to_gap")
        return self

    def values(self, result: ModelResult) -> list[float]:
        """Per seed for `all`, a single median for `median`."""
        values = metric_per_seed(result, self.metric, self.gap, self.at_step)
        return values if self.seeds == "all" else [median(values)]

    def _metric_label(self) -> str:
        """The metric, where it is not the final gap that nearly every check reads, for a key."""
        return "" if self.metric == "final_gap" else f"{self.metric_text()} "

    def metric_text(self) -> str:
        return (
            self.metric + (f"(gap ≤ {self.gap:g})" if self.gap else "") + (f" at step {self.at_step:,}" if self.at_step is not None else "")
        )

    def seeds_text(self) -> str:
        return "" if self.seeds == "all" else " (median over seeds)"


class OrderCheck(_MetricCheck):
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
            self.seed_label(results, i) + " < ".join(_fmt(v) for v in row) + ("" if ok else " ✗")
            for i, (row, ok) in enumerate(zip(rows, holds))
        )
        margin = min(relative_distance(a, b) for row in rows for a, b in zip(row, row[1:]))
        key = " < ".join(f"{name} {median(list(column)):.3g}" for name, column in zip(self.models, zip(*rows)))
        return CheckResult(all(holds), self.statement(), evidence, tuple(v for row in rows for v in row), margin, key=key)


class RatioCheck(_MetricCheck):
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
            self.seed_label(results, i) + f"ratio {_fmt(r)}" + ("" if ok else " ✗") for i, (r, ok) in enumerate(zip(ratios, holds))
        )
        margin = min(self.bounds().margin(r) for r in ratios)
        return CheckResult(all(holds), self.statement(), evidence, tuple(ratios), margin, key=f"{self._metric_label()}{self.model}/{self.over} {span(ratios)}×")


class BoundCheck(_MetricCheck):
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
        evidence = "; ".join(self.seed_label(results, i) + _fmt(v) + ("" if ok else " ✗") for i, (v, ok) in enumerate(zip(values, holds)))
        margin = min(self.bounds().margin(v) for v in values)
        return CheckResult(all(holds), self.statement(), evidence, tuple(values), margin, key=f"{self.model} {self.metric} {span(values)}")


class CloseCheck(_ModelCheck):
    """Two models' curves stay within `tol` relative deviation at every recorded step."""

    kind: Literal["close"]
    models: list[str] = Field(..., min_length=2, max_length=2)
    curve: Literal["loss", "gap", "end_to_end"] = Field(
        "loss", description="end_to_end: ‖W_e − W_e'‖ / ‖W_e'‖ (needs train.record_end_to_end)"
    )
    tol: float = Field(..., gt=0.0)
    seeds: SeedRule = "all"
    lr: float | None = Field(None, gt=0.0, description="compare at this lr of the grid instead of the picked ones")
    says: str = ""

    def model_refs(self) -> Refs:
        return [(("models", i), name) for i, name in enumerate(self.models)]

    def statement(self) -> str:
        return f"{self.curve} curves of {self.models[0]} and {self.models[1]} within {self.tol:g} relative{self.lr_text()}"

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        a, b = (results[name] for name in self.models)
        devs = _deviations(a, b, self.curve)
        devs = devs if self.seeds == "all" else [median(devs)]
        holds = [d <= self.tol for d in devs]
        evidence = "; ".join(
            self.seed_label(results, i) + f"max rel dev {_fmt(d)}" + ("" if ok else " ✗") for i, (d, ok) in enumerate(zip(devs, holds))
        )
        margin = min(relative_distance(d, self.tol) for d in devs)
        return CheckResult(all(holds), self.statement(), evidence, tuple(devs), margin, key=f"{a.name} vs {b.name}: max rel dev {max(devs):.3g}")


class OvertakesCheck(_ModelCheck):
    """models[0] is behind models[1] (higher gap) at some recorded step, then ahead to the end;
    the overtaking step is the first from which it stays ahead, and must come no earlier than
    step `after` and by step `by` (the timing of a crossing the paper shows)."""

    model_config = strict_with(rules=("after ≤ by",))
    kind: Literal["overtakes"]
    models: list[str] = Field(..., min_length=2, max_length=2)
    after: int | None = Field(None, ge=1, description="earliest allowed overtaking step")
    by: int | None = Field(None, ge=1, description="latest allowed overtaking step")
    seeds: Literal["all"] = "all"
    says: str = ""

    @model_validator(mode="after")
    def _window(self) -> OvertakesCheck:
        if self.after is not None and self.by is not None and self.after > self.by:
            raise ValueError(f"after ({self.after}) is later than by ({self.by}); the overtaking step must lie between them")
        return self

    def model_refs(self) -> Refs:
        return [(("models", i), name) for i, name in enumerate(self.models)]

    def window(self) -> Bounds | None:
        return None if self.after is None and self.by is None else Bounds(self.after, self.by)

    def statement(self) -> str:
        if self.after is not None and self.by is not None:
            when = f" between steps {self.after:,} and {self.by:,}"
        elif self.after is not None or self.by is not None:
            when = f" from step {self.after:,}" if self.after is not None else f" by step {self.by:,}"
        else:
            when = ""
        return f"{self.models[0]} overtakes {self.models[1]}{when} (L − L*)"

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        a, b = (results[name] for name in self.models)
        seeds = [overtaking_step(x, y, a.steps) for x, y in zip(a.gaps, b.gaps)]
        window = self.window()
        holds = [s is not None and not math.isinf(s) and (window is None or window.holds(s)) for s in seeds]
        evidence = "; ".join(
            self.seed_label(results, i) + _overtaking_text(s) + ("" if ok else " ✗") for i, (s, ok) in enumerate(zip(seeds, holds))
        )
        steps = tuple(math.nan if s is None else s for s in seeds)
        margin = min((window.margin(s) for s in steps), default=math.inf) if window else math.inf
        key = _overtaking_key(self.models[0], self.models[1], steps, window)
        return CheckResult(all(holds), self.statement(), evidence, steps, margin, key=key)


class ConvergesCheck(_ModelCheck):
    """Over the lr grid, the deviation between two models' curves shrinks with the lr: strictly
    smaller at every smaller lr, with a fitted order (slope of log deviation vs log lr) between
    `order_at_least` and `order_at_most`: two-sided around the order the claim states (O(η) is
    order ≈ 1), so that a deviation that blows up at the largest lr, which fits a steep order, fails."""

    model_config = strict_with(rules=("order_at_least ≤ order_at_most",))
    kind: Literal["converges"]
    models: list[str] = Field(..., min_length=2, max_length=2)
    curve: Literal["loss", "gap", "end_to_end"] = "loss"
    order_at_least: float = Field(..., gt=0.0)
    order_at_most: float = Field(..., gt=0.0, description="the order the claim states, with room for the fit's noise above it")
    says: str = ""

    @model_validator(mode="after")
    def _band(self) -> ConvergesCheck:
        if self.order_at_least > self.order_at_most:
            raise ValueError(f"order_at_least ({self.order_at_least:g}) exceeds order_at_most ({self.order_at_most:g})")
        return self

    def model_refs(self) -> Refs:
        return [(("models", i), name) for i, name in enumerate(self.models)]

    def bounds(self) -> Bounds:
        return Bounds(self.order_at_least, self.order_at_most)

    def statement(self) -> str:
        return f"{self.curve} deviation of {self.models[0]} from {self.models[1]} shrinks with the lr, order {self.bounds().text()}"

    def evaluate(self, results: Results) -> CheckResult:
        """Reads every lr of the grid, not the picks."""
        lrs = sorted(results.by_lr[self.models[0]])
        pairs = [tuple(results.at(name, lr) for name in self.models) for lr in lrs]
        broken = [f"lr {lr:g}, {r.name}: {r.why_none}" for lr, pair in zip(lrs, pairs) for r in pair if r.lr is None]
        if broken:
            return CheckResult(False, self.statement(), "no usable runs (" + "; ".join(broken) + ")")
        worst = [max(_deviations(a, b, self.curve)) for a, b in pairs]  # the worst seed at each lr
        order = fitted_order(lrs, worst)
        shrinking = all(small < large for small, large in zip(worst, worst[1:]))
        in_band = self.bounds().holds(order)
        passed = shrinking and in_band
        listing = "; ".join(f"lr {lr:g}: {d:.3g}" for lr, d in zip(lrs, worst))
        evidence = f"max rel dev (worst seed) {listing}; fitted order {order:.3f}" + ("" if shrinking else "; not shrinking with the lr ✗")
        evidence += "" if in_band else " ✗"
        key = f"order {order:.3f}, max rel dev {max(worst):.3g}"
        return CheckResult(passed, self.statement(), evidence, (*worst, order), self.bounds().margin(order), key=key)


Check = Annotated[OrderCheck | RatioCheck | BoundCheck | CloseCheck | OvertakesCheck | ConvergesCheck, Field(discriminator="kind")]


def evaluate(check: Check, results: Results) -> CheckResult:
    result = check.evaluate(results)
    key = result.key + (f" vs the paper's {_paper_text(check)}" if check.paper and result.key else "")
    return replace(result, role=check.role, decides=check.decides, key=key)


def span(values: list[float] | tuple[float, ...]) -> str:
    """Values as a range at 3 significant digits, "2.01–2.02", or one value where they agree."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return _fmt(values[0]) if values else ""
    low, high = f"{min(finite):.3g}", f"{max(finite):.3g}"
    return low if low == high else f"{low}–{high}"


def _paper_text(check: Check) -> str:
    """The paper's reading of what `check` reads: "≈5.8×", "≈200,000–250,000"."""
    if isinstance(check, OvertakesCheck):
        return "≈" + "–".join(f"{v:,.0f}" for v in check.paper)
    return "≈" + "–".join(f"{v:.3g}" for v in check.paper) + ("×" if isinstance(check, RatioCheck) else "")


def _overtaking_key(a: str, b: str, steps: tuple[float, ...], window: Bounds | None) -> str:
    """ "a overtakes b at step 65,000–70,000", with "earlier" / "later" than the window where it is outside it."""
    reached = [s for s in steps if math.isfinite(s)]
    if len(reached) < len(steps):
        return f"{a} does not overtake {b} at {len(steps) - len(reached)} of {len(steps)} seeds"
    low, high = f"{min(reached):,.0f}", f"{max(reached):,.0f}"
    text = f"{a} overtakes {b} at step " + (low if low == high else f"{low}–{high}")
    if window and window.low is not None and max(reached) < window.low:
        text += " (earlier)"
    elif window and window.high is not None and min(reached) > window.high:
        text += " (later)"
    return text


def relative_distance(a: float, b: float) -> float:
    """|a − b| relative to the larger magnitude (0 for equal values, NaN where either is)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf  # a gap never reached against one reached, or no ratio: not a small change
    return abs(a - b) / max(abs(a), abs(b))


def _deviations(a: ModelResult, b: ModelResult, curve: str) -> list[float]:
    """Per seed, the max relative deviation of a's curve from b's."""
    if curve == "end_to_end":
        assert a.end_to_end is not None and b.end_to_end is not None, "the spec validation requires record_end_to_end"
        return [max_rel_dev(x, y) for x, y in zip(a.end_to_end, b.end_to_end)]
    curves_a, curves_b = (a.gaps, b.gaps) if curve == "gap" else (a.losses, b.losses)
    return [max_rel_dev(x, y) for x, y in zip(curves_a, curves_b)]


def fitted_order(lrs: list[float], deviations: list[float]) -> float:
    """Least-squares slope of log(deviation) against log(lr)."""
    x = torch.tensor(lrs, dtype=torch.float64).log()
    y = torch.tensor(deviations, dtype=torch.float64).clamp_min(1e-300).log()
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum()) if len(lrs) > 1 else math.nan


def overtaking_step(a: torch.Tensor, b: torch.Tensor, steps: torch.Tensor) -> float | None:
    """First recorded step from which curve a stays below b to the end; None if a is never
    above b (nothing to overtake), inf if a does not end below b."""
    behind = a >= b
    if not bool(behind.any()):
        return None
    last_behind = int(behind.nonzero()[-1, 0])
    return math.inf if last_behind == len(a) - 1 else float(steps[last_behind + 1])


def _overtaking_text(step: float | None) -> str:
    if step is None:
        return "ahead from the start (nothing to overtake)"
    return "does not end ahead" if math.isinf(step) else f"overtakes at step {step:,.0f}"


def _ratio_of(a: float, b: float) -> float:
    """a / b; no ratio (NaN, which holds no bound) when both are 0, e.g. two gaps at L* within rounding."""
    if b == 0:
        return math.inf if a > 0 else (math.nan if a == 0 else -math.inf)
    return a / b


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "none (0/0: both within rounding of L*)"
    return "never" if math.isinf(value) else f"{value:.4g}"
