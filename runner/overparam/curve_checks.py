"""The checks that read whole curves: two models' curves close at every step, one overtaking the
other (and when), and the deviation between two models shrinking with the lr at a stated order."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from overparam.checkbase import Bounds, CheckResult, ModelCheck, Refs, SeedRule, fmt, relative_distance
from overparam.results import ModelResult, Results, max_rel_dev, median
from overparam.strict import strict_with


class CloseCheck(ModelCheck):
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

    def fixed_lr(self) -> float | None:
        return self.lr

    def read_curve(self) -> str | None:
        return self.curve

    def seed_rule(self) -> str:
        return self.seeds

    def statement(self) -> str:
        return f"{self.curve} curves of {self.models[0]} and {self.models[1]} within {self.tol:g} relative{self.lr_text()}"

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        a, b = (results[name] for name in self.models)
        devs = _deviations(a, b, self.curve)
        devs = devs if self.seeds == "all" else [median(devs)]
        holds = [d <= self.tol for d in devs]
        evidence = "; ".join(
            self.seed_label(results, i) + f"max rel dev {fmt(d)}" + ("" if ok else " ✗") for i, (d, ok) in enumerate(zip(devs, holds))
        )
        margin = min(relative_distance(d, self.tol) for d in devs)
        return CheckResult(all(holds), self.statement(), evidence, tuple(devs), margin, key=f"{a.name} vs {b.name}: max rel dev {max(devs):.3g}")


class OvertakesCheck(ModelCheck):
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


class ConvergesCheck(ModelCheck):
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

    def read_curve(self) -> str | None:
        return self.curve

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
