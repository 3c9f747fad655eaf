"""The theory claims' spec: a numeric probe of a theorem, and value checks on what it measures."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import BaseModel, Field

from overparam.checks import DECIDES_TEXT, ROLE_TEXT, Role, SpecCheck, StatementId
from overparam.claim import CLAIM_RULES, Claim
from overparam.strict import STRICT, given, strict_with
from overparam.yamlpos import KeyPath

# YAML has lists, not tuples: a tuple field takes a list (strict=False), its entries stay strict.
Size = Annotated[int, Field(strict=True, ge=1, le=64)]
Shape = Annotated[tuple[Size, Size, Size], Field(strict=False)]
Case = Annotated[tuple[Size, Size, Size, Size], Field(strict=False)]
Depths = list[Annotated[int, Field(ge=1, le=16)]]


class PrecondSpectrumProbe(BaseModel):
    """Claim 1: build P_{W_e} explicitly for random W_e of shape k × d and rank r."""

    model_config = STRICT
    kind: Literal["precond_spectrum"]
    shapes: list[Shape] = Field(..., min_length=1, description="(k, d, rank) of each random W_e")
    depths: Depths = Field(..., min_length=1)
    METRICS: ClassVar[tuple[str, ...]] = ("asymmetry", "negative_eigenvalue", "eigenpair_deviation", "rule10_vs_P")


class SingleOutputRuleProbe(BaseModel):
    """Eq. (12) against rule (10) for k = 1."""

    model_config = STRICT
    kind: Literal["single_output_rule"]
    dims: list[Annotated[int, Field(ge=1, le=4096)]] = Field(..., min_length=1)
    depths: Depths = Field(..., min_length=1)
    METRICS: ClassVar[tuple[str, ...]] = ("max_relative_difference",)


class EndToEndFlowProbe(BaseModel):
    """Theorem 1: multi-output deep linear nets under GD with weight decay against rule (10)."""

    model_config = STRICT
    kind: Literal["end_to_end_flow"]
    cases: list[Case] = Field(..., min_length=1, description="(k, d, width, depth) per case")
    lrs: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(..., min_length=2)
    horizon: float = Field(1.0, gt=0.0, le=100.0, description="η × steps, the same for every lr")
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)
    METRICS: ClassVar[tuple[str, ...]] = ("balanced_min_order", "balanced_max_deviation", "unbalanced_min_deviation")


class NotAGradientProbe(BaseModel):
    """Theorem 2: line integrals of the rule (12) field around closed loops, and of a true gradient."""

    model_config = STRICT
    kind: Literal["not_a_gradient"]
    d: int = Field(3, ge=2, le=64)
    p: float = Field(4.0, ge=2.0, le=16.0)
    depths: list[Annotated[int, Field(ge=2, le=16)]] = Field(..., min_length=1)
    loops: int = Field(10, ge=1, le=1000)
    points: int = Field(64, ge=8, le=100_000, description="quadrature points (the check compares with twice as many)")

    @property
    def METRICS(self) -> tuple[str, ...]:  # noqa: N802 - read like the other probes' constant
        names = ["gradient_field"] + [f"rule12_depth{n}" for n in self.depths]
        return tuple(f"{name}_{what}" for name in names for what in ("max_circulation", "quadrature_error"))


Probe = Annotated[PrecondSpectrumProbe | SingleOutputRuleProbe | EndToEndFlowProbe | NotAGradientProbe, Field(discriminator="kind")]


class ValueCheck(SpecCheck):
    """lo ≤ a probe's metric ≤ hi, for every seed."""

    model_config = strict_with(given("lo", "hi"))
    kind: Literal["value"]
    metric: str
    lo: float | None = None
    hi: float | None = None
    says: str = ""
    role: Role = Field("claim", description=ROLE_TEXT)
    decides: StatementId | None = Field(None, description=DECIDES_TEXT)


METRIC_RULE = "each check's metric is one that the probe measures: " + "; ".join(
    [
        f"{get_args(probe.model_fields['kind'].annotation)[0]}: {', '.join(probe.METRICS)}"
        for probe in (PrecondSpectrumProbe, SingleOutputRuleProbe, EndToEndFlowProbe)
    ]
    + [
        "not_a_gradient: gradient_field_<what> and rule12_depth<N>_<what> for each N of its depths, <what> being max_circulation or quadrature_error"
    ]
)


class TheorySpec(Claim):
    model_config = strict_with(rules=CLAIM_RULES + (METRIC_RULE,))
    experiment: Literal["theory"]
    group: Literal["experiments", "theory", "maps"] = "theory"
    probe: Probe
    checks: list[ValueCheck] = Field(..., min_length=1, max_length=100)  # type: ignore[assignment]  # a kind narrows Claim's checks to its own

    def model_names(self) -> list[str]:
        return []

    def listing(self) -> str:
        return f"probe: {self.probe.kind}"

    def reference_errors(self) -> list[tuple[KeyPath, str]]:
        problems = super().reference_errors()
        known = self.probe.METRICS
        for i, check in enumerate(self.checks):
            if check.metric not in known:
                problems.append((("checks", i, "metric"), f"the {self.probe.kind} probe measures {', '.join(known)}; not {check.metric!r}"))
            if check.lo is None and check.hi is None:
                problems.append((("checks", i), "a value check needs lo or hi"))
        return problems
