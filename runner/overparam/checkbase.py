"""What every check kind shares: its result (with the numbers that decided it and how far they
can be trusted), the bounds rule, and the base models of checks that read named models.

Seeds combine per check: `all` (default) means the relation must hold for every seed on its
own; `median` applies it once to the median over seeds. Every result carries the numbers
that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from overparam.results import Metric, ModelResult, Results, median, metric_per_seed
from overparam.strict import STRICT, equals, strict_with, when

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


class SpecCheck(BaseModel):
    """What every kind's check tells the spec's validation and the evidence about itself: the
    models it reads, and where it reads them (a fixed lr, a recorded step, a metric, a curve).
    Each kind's check overrides what applies to it; None: it reads no such thing."""

    def model_refs(self) -> Refs:
        """(key path in the check, model name) of every model the check reads."""
        return []

    def fixed_lr(self) -> float | None:
        """The lr of the grid at which it reads every model, instead of their picks."""
        return None

    def read_step(self) -> int | None:
        """The recorded step at which it reads its metric, instead of the end."""
        return None

    def read_metric(self) -> Metric | None:
        return None

    def read_curve(self) -> str | None:
        return None

    def seed_rule(self) -> str:
        """How it combines seeds: "all" (every seed must hold) or "median"."""
        return "all"


class ModelCheck(SpecCheck):
    """A check on the results of named models: each is read at its picked lr (or at `lr`), then
    `judge` decides; a model without usable runs fails the check, with the reason."""

    model_config = STRICT
    role: Role = Field("claim", description=ROLE_TEXT)
    decides: StatementId | None = Field(None, description=DECIDES_TEXT)
    paper: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=list, max_length=2, description="the paper's value of what the check reads (one reading, or its low and high), shown beside ours"
    )

    def statement(self) -> str:
        raise NotImplementedError

    def judge(self, results: dict[str, ModelResult]) -> CheckResult:
        raise NotImplementedError

    def evaluate(self, results: Results) -> CheckResult:
        chosen = {name: results.at(name, self.fixed_lr()) for _, name in self.model_refs()}
        missing = [name for name, result in chosen.items() if result.lr is None]
        if missing:
            reasons = "; ".join(f"{n}: {chosen[n].why_none}" for n in missing)
            return CheckResult(False, self.statement(), f"no usable runs ({reasons})")
        return self.judge(chosen)

    def seed_label(self, results: dict[str, ModelResult], index: int) -> str:
        if self.seed_rule() == "median":
            return "median: "
        seeds = next(iter(results.values())).seeds
        return f"seed {seeds[index]}: " if len(seeds) > 1 else ""

    def lr_text(self) -> str:
        lr = self.fixed_lr()
        return f" at lr {lr:g}" if lr else ""


class MetricCheck(ModelCheck):
    model_config = strict_with(STEPS_TO_GAP)
    metric: Metric
    gap: float | None = Field(None, gt=0.0, description="threshold for steps_to_gap")
    seeds: SeedRule = "all"
    lr: float | None = Field(None, gt=0.0, description="read every model at this lr of the grid instead of its picked one")
    at_step: int | None = Field(None, ge=0, description="read final_loss / final_gap / gap_ratio / final_batch_loss at this recorded step, not the end")
    says: str = Field("", description="the claim this check states, in words")

    @model_validator(mode="after")
    def _gap_for_steps(self) -> MetricCheck:
        if self.metric == "steps_to_gap" and self.gap is None:
            raise ValueError("metric steps_to_gap needs `gap: <threshold>`")
        if self.metric == "steps_to_gap" and self.at_step is not None:
            raise ValueError("at_step does not apply to steps_to_gap")
        return self

    def fixed_lr(self) -> float | None:
        return self.lr

    def read_step(self) -> int | None:
        return self.at_step

    def read_metric(self) -> Metric | None:
        return self.metric

    def seed_rule(self) -> str:
        return self.seeds

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


def span(values: list[float] | tuple[float, ...]) -> str:
    """Values as a range at 3 significant digits, "2.01–2.02", or one value where they agree."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return fmt(values[0]) if values else ""
    low, high = f"{min(finite):.3g}", f"{max(finite):.3g}"
    return low if low == high else f"{low}–{high}"


def relative_distance(a: float, b: float) -> float:
    """|a − b| relative to the larger magnitude (0 for equal values, NaN where either is)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf  # a gap never reached against one reached, or no ratio: not a small change
    return abs(a - b) / max(abs(a), abs(b))


def fmt(value: float) -> str:
    if math.isnan(value):
        return "none (0/0: both within rounding of L*)"
    return "never" if math.isinf(value) else f"{value:.4g}"
