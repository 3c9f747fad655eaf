"""What every spec has, whatever it trains: the claim, where the paper states it, the verdict,
seeds, checks and profiles. Each experiment kind's spec (overparam.kinds.*.spec) extends `Claim`;
loading and located errors live in `specload`.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from overparam.checks import Check
from overparam.strict import STRICT, UNIQUE, equals, strict_with, when
from overparam.yamlpos import Path_


class PaperRef(BaseModel):
    """Where the claim is in the paper and the numbers it reports (read off its log plots)."""

    model_config = STRICT
    section: str
    figure: str = ""
    statement: str = Field("", description="what the paper's figure shows, in words")
    final_gap: dict[str, float] = Field(default_factory=dict, description="model name -> L − L* the paper reports")
    at_step: int | None = Field(None, ge=1, description="the step those numbers are read at")


def paper_text(ref: PaperRef | None) -> str:
    """Where the paper states the claim and what it shows, in one line for a report."""
    if ref is None:
        return "Not a claim of the paper: an experiment beyond it."
    return f"Section {ref.section}" + (f", {ref.figure}" if ref.figure else "") + ". " + ref.statement


class Verdict(BaseModel):
    """What we conclude about the paper's claim. The checks state the evidence behind it: if
    they fail, the observation changed and the verdict must be revisited."""

    model_config = strict_with(
        when(
            equals("status", ("partly reproduced", "not reproduced")),
            {"required": ["observed"], "properties": {"observed": {"pattern": r"\S"}}},
        )
    )
    status: Literal["reproduced", "partly reproduced", "not reproduced", "by checks"] = Field(
        ..., description="`by checks`: the checks state the paper's own claim, so they decide (for profiles not yet run)"
    )
    observed: str = Field("", description="what we observe, in words; required for partly / not reproduced")

    def decided(self, passed: bool) -> str:
        """The status to show, given whether every check passed. A stated verdict whose checks
        fail is undecided: the evidence behind it changed."""
        if self.status == "by checks":
            return "reproduced" if passed else "not reproduced"
        return self.status if passed else "undecided"

    @model_validator(mode="after")
    def _explained(self) -> Verdict:
        if self.status in ("partly reproduced", "not reproduced") and not self.observed.strip():
            raise ValueError(f"a verdict of {self.status!r} needs `observed:` saying what we see instead")
        return self


CLAIM_RULES = (
    "models have distinct names",
    "every model a check names, and every key of paper.final_gap, is one of the models",
    "a check's lr is in the lr grid of every model it reads",
    "a check's at_step is a recorded step of every model it reads, at every lr of its grid",
    "each profile, merged into the spec (mappings key by key, any other value replaced), is a valid spec",
)


class Claim(BaseModel):
    """What every spec has, whatever it trains: the claim, the paper, the verdict, seeds and checks.
    Subclasses add `models` and say which lrs and steps each model records."""

    model_config = strict_with(rules=CLAIM_RULES)
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
        for name in self.paper.final_gap if self.paper else {}:
            if name not in names:
                problems.append((("paper", "final_gap", name), f"no model named {name!r}"))
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
        for key, name in check.model_refs():
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"models are {', '.join(names)}"
                problems.append((("checks", i) + key, f"no model named {name!r}; {fix}"))
        return problems
