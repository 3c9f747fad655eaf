"""What every spec has, whatever it trains: the claim, where the paper states it, the verdict,
seeds, checks and profiles. Each experiment kind's spec (overparam.kinds.*.spec) extends `Claim`;
loading and located errors live in `specload`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from overparam.checks import Check, CheckResult
from overparam.strict import UNIQUE, equals, strict_with, when
from overparam.yamlpos import Path_


class PaperRef(BaseModel):
    """Where the claim is in the paper and the numbers it reports (read off its log plots)."""

    model_config = strict_with(rules=("every curve of `curves` has one value per step of `curve_steps`",))
    section: str
    figure: str = ""
    statement: str = Field("", description="what the paper's figure shows, in words")
    final_gap: dict[str, float] = Field(default_factory=dict, description="model name -> L − L* the paper reports")
    at_step: int | None = Field(None, ge=1, description="the step those numbers are read at")
    curve_steps: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, description="the steps at which `curves` are read")
    curves: dict[str, list[Annotated[float, Field(gt=0.0)]]] = Field(
        default_factory=dict, description="model name -> L − L* at each of curve_steps, read off the paper's figure"
    )
    reading: str = Field("", description="how `curves` were read off the figure, and to what precision")

    @model_validator(mode="after")
    def _one_value_per_step(self) -> PaperRef:
        for name, values in self.curves.items():
            if len(values) != len(self.curve_steps):
                raise ValueError(f"curves.{name} has {len(values)} values for {len(self.curve_steps)} curve_steps; give one per step")
        return self

    def readings(self, name: str) -> list[tuple[int, float]]:
        """(step, L − L*) of model `name` read off the paper's figure."""
        return list(zip(self.curve_steps, self.curves.get(name, [])))


def paper_text(ref: PaperRef | None) -> str:
    """Where the paper states the claim and what it shows, in one line for a report."""
    if ref is None:
        return "Not a claim of the paper: an experiment beyond it."
    return f"Section {ref.section}" + (f", {ref.figure}" if ref.figure else "") + ". " + ref.statement


class Verdict(BaseModel):
    """What we conclude about the paper's claim. Checks of role `claim` state the paper's claim
    and decide, each only where it is robust and calm: all hold → reproduced; some hold →
    partly reproduced; none → not reproduced; where fragile or chaotic ones leave it open →
    inconclusive (decided_status). Checks of role `observation` pin what we observe instead and
    must hold. The stated status must be the one the claim's checks decide: else the verdict is
    undecided (its evidence changed)."""

    model_config = strict_with(
        when(
            equals("status", ("partly reproduced", "not reproduced", "inconclusive")),
            {"required": ["observed"], "properties": {"observed": {"pattern": r"\S"}}},
        )
    )
    status: Literal["reproduced", "partly reproduced", "not reproduced", "inconclusive", "by checks"] = Field(
        ..., description="`by checks`: whatever the claim's checks decide (for profiles not yet run)"
    )
    observed: str = Field("", description="what we observe, in words; required unless reproduced")

    def judge(self, checks: list[CheckResult]) -> Judgement:
        """The status to show and whether the spec passes, from its checks (the class docstring)."""
        pinned = [c for c in checks if c.role == "observation" and not c.passed]
        decided = decided_status(checks)
        if self.status == "by checks":
            shown = decided or "reproduced"
            return Judgement(shown, shown == "reproduced" and not pinned, "decided by the checks, which state the paper's claim")
        if pinned:
            return Judgement("undecided", False, f"an observation the verdict rests on no longer holds ({pinned[0].statement})")
        if decided is not None and decided != self.status:
            return Judgement("undecided", False, f"the checks of the paper's claim decide {decided}")
        return Judgement(self.status, True, "")

    @model_validator(mode="after")
    def _explained(self) -> Verdict:
        if self.status in ("partly reproduced", "not reproduced", "inconclusive") and not self.observed.strip():
            raise ValueError(f"a verdict of {self.status!r} needs `observed:` saying what we see instead")
        return self


@dataclass(frozen=True)
class Judgement:
    status: str  # the status the report shows
    passed: bool  # whether the evidence supports the stated verdict
    why: str  # why, where it is not simply the stated status


def decided_status(checks: list[CheckResult]) -> str | None:
    """What the checks of the paper's claim decide (Verdict's docstring); None without any.
    A check that is fragile or chaotic decides nothing either way: where such checks remain
    besides the robust ones, the claim is partly reproduced only if robust checks both hold and
    fail, and inconclusive otherwise."""
    claim = [c for c in checks if c.role == "claim"]
    if not claim:
        return None
    shaky = [c for c in claim if c.stability is not None and c.stability.shaky]
    firm = [c for c in claim if c not in shaky]
    held = sum(c.passed for c in firm)
    if not shaky:
        return "reproduced" if held == len(firm) else ("partly reproduced" if held else "not reproduced")
    return "partly reproduced" if 0 < held < len(firm) else "inconclusive"


CLAIM_RULES = (
    "models have distinct names",
    "every model a check names, and every key of paper.final_gap and paper.curves, is one of the models",
    "a check's lr is in the lr grid of every model it reads",
    "a check's at_step is a recorded step of every model it reads, at every lr of its grid",
    "metric final_batch_loss (cross-entropy + L2 penalty) only where the runs have a penalty: convnet specs",
    "each profile, merged into the spec (mappings key by key, any other value replaced), is a valid spec",
)


class Claim(BaseModel):
    """What every spec has, whatever it trains: the claim, the paper, the verdict, seeds and checks.
    Subclasses add `models` and say which lrs and steps each model records."""

    model_config = strict_with(rules=CLAIM_RULES)
    PENALIZED: ClassVar[bool] = False  # whether runs record a penalty beside the loss (metric final_batch_loss)
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=60)
    title: str
    claim: str
    paper: PaperRef | None = Field(None, description="where the paper states the claim; omit for a claim beyond the paper")
    verdict: Verdict
    group: Literal["experiments", "theory", "maps"] = "experiments"
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(..., min_length=1, max_length=100, json_schema_extra=UNIQUE)
    checks: list[Check] = Field(..., min_length=1, max_length=100)
    assumptions: list[str] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name -> overrides of this spec's keys")

    def listing(self) -> str:
        """What the claim compares, for `overparam list`."""
        return ", ".join(self.model_names())

    def model_names(self) -> list[str]:
        return [m.name for m in self.models]  # type: ignore[attr-defined]  # each kind with models declares them

    def lr_grid(self, name: str) -> list[float]:
        raise NotImplementedError

    def declared_run_steps(self) -> int:
        """Training steps summed over the runs the spec declares (before refinement, twins and
        the run store): what an invocation-wide progress line counts. Nothing to train: 0."""
        return 0

    def records_step(self, name: str, step: int) -> bool:
        """Whether `step` is a recorded step of model `name` at every lr of its grid."""
        raise NotImplementedError

    def reference_errors(self) -> list[tuple[Path_, str]]:
        """Problems between fields: names that must exist, seeds that must be distinct."""
        problems: list[tuple[Path_, str]] = []
        names = self.model_names()
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((("models", i, "name"), f"model name {name!r} is used twice"))
        if len(set(self.seeds)) != len(self.seeds):
            problems.append((("seeds",), "seeds repeat a value"))
        for i, check in enumerate(self.checks):
            problems += self._check_errors(i, check, names)
        for key in ("final_gap", "curves"):
            for name in getattr(self.paper, key) if self.paper else {}:
                if name not in names:
                    problems.append((("paper", key, name), f"no model named {name!r}"))
        return problems

    def _check_errors(self, i: int, check: Check, names: list[str]) -> list[tuple[Path_, str]]:
        problems: list[tuple[Path_, str]] = []
        known = [name for _, name in check.model_refs() if name in names]
        lr = getattr(check, "lr", None)
        lacking = [name for name in known if lr is not None and lr not in self.lr_grid(name)]
        if lacking:
            problems.append((("checks", i, "lr"), f"lr {lr:g} is not in the lr grid of {', '.join(map(repr, lacking))}"))
        at_step = getattr(check, "at_step", None)
        off_grid = [name for name in known if at_step is not None and not self.records_step(name, at_step)]
        if off_grid:
            where = ", ".join(map(repr, off_grid))
            problems.append((("checks", i, "at_step"), f"step {at_step} is not a recorded step of {where}; use a multiple of record_every"))
        if getattr(check, "metric", None) == "final_batch_loss" and not self.PENALIZED:
            problems.append((("checks", i, "metric"), "final_batch_loss is a convnet's cross-entropy plus its penalty; these runs have no penalty: use final_loss"))
        for key, name in check.model_refs():
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"models are {', '.join(names)}"
                problems.append((("checks", i) + key, f"no model named {name!r}; {fix}"))
        return problems
