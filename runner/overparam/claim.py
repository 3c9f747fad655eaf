"""What every spec has, whatever it trains: the claim, where the paper states it, the verdict,
seeds, checks and profiles. Each experiment kind's spec (overparam.kinds.*.spec) extends `Claim`;
loading and located errors live in `specload`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from overparam.checks import Check, CheckResult, StatementId
from overparam.strict import STRICT, UNIQUE, Line, ProfileName, SpecId, equals, strict_with, when
from overparam.yamlpos import KeyPath


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


Aspect = Literal["direction", "ordering", "magnitude", "timing"]
ASPECTS: tuple[Aspect, ...] = ("direction", "ordering", "magnitude", "timing")
StatementStatus = Literal["reproduced", "not reproduced", "undecided", "not tested"]
Headline = Literal["reproduced", "partly reproduced", "undecided", "not reproduced", "not tested"]
HEADLINE_RULE = (
    "a claim is reproduced when every statement tested at its budget is, not reproduced when every one fails, "
    "partly reproduced when some hold and the others fail or stay undecided, and undecided when none holds and some stay undecided"
)


class Statement(BaseModel):
    """One statement of the paper's claim, by its aspect: *direction* (depth helps or not),
    *ordering* (3 < 2 < 1), *magnitude* (the paper's ratio, within its reading precision) or
    *timing* (when curves cross). The claim checks that name it (`decides: <id>`) decide it."""

    model_config = STRICT
    id: StatementId
    aspect: Aspect
    says: Line = Field(..., description="the statement, in words, on one line")


@dataclass(frozen=True)
class StatementVerdict:
    """A statement and the claim checks that decide it (none at this budget: not tested). A
    firm failure decides *not reproduced*; else a fragile or chaotic check leaves it *undecided*;
    else every check holds firmly: *reproduced*. Each move of a check from failing to shaky to
    holding can only raise it."""

    aspect: Aspect | None  # None: a spec without statements, where each claim check is one
    says: str
    checks: tuple[CheckResult, ...]

    @property
    def status(self) -> StatementStatus:
        if not self.checks:
            return "not tested"
        firm = [c for c in self.checks if not (c.stability and c.stability.shaky)]
        if not all(c.passed for c in firm):
            return "not reproduced"
        return "reproduced" if len(firm) == len(self.checks) else "undecided"

    def short(self) -> str:
        """The numbers of the check that decided it (the first firm failure, else the first shaky
        check, else the first), for an index cell."""
        if not self.checks:
            return "not tested at this budget"
        shaky = [c for c in self.checks if c.stability and c.stability.shaky]
        failed = [c for c in self.checks if not c.passed and c not in shaky]
        deciding = (failed or shaky or list(self.checks))[0]
        return deciding.key + (" …" if len(self.checks) > 1 else "")

    def key(self) -> str:
        """Its checks' numbers in a few characters, and why it is undecided where it is."""
        if not self.checks:
            return "not tested at this budget"
        numbers = "; ".join(c.key for c in self.checks if c.key)
        shaky = [c.stability for c in self.checks if c.stability and c.stability.shaky]
        why = []
        if any(s.fragile for s in shaky):
            why.append("fragile: flips with the picks one lr step lower")
        if any(s.chaotic for s in shaky):
            why.append("chaotic: one-ulp twins of the data move it past its margin")
        if self.status == "undecided":
            return numbers + (" (" + "; ".join(why) + ")" if why else "")
        firmness = "robust, calm" if all(c.stability and c.stability.fragile is False and c.stability.chaotic is False for c in self.checks) else ""
        return numbers + (f" ({firmness})" if firmness and numbers else "")


def statement_verdicts(statements: list[Statement], checks: list[CheckResult]) -> list[StatementVerdict]:
    """Each statement with the claim checks that decide it; a spec without statements has one per claim check."""
    claim = [c for c in checks if c.role == "claim"]
    if not statements:
        return [StatementVerdict(None, c.statement, (c,)) for c in claim]
    return [StatementVerdict(s.aspect, s.says, tuple(c for c in claim if c.decides == s.id)) for s in statements]


def headline(statuses: list[StatementStatus]) -> Headline:
    """The claim's headline from its statements (HEADLINE_RULE); monotone: a statement that moves
    up (not reproduced → undecided → reproduced) never moves the headline down
    (not reproduced < undecided < partly reproduced < reproduced)."""
    tested = [s for s in statuses if s != "not tested"]
    if not tested:
        return "not tested"
    held = tested.count("reproduced")
    if held == len(tested):
        return "reproduced"
    if tested.count("not reproduced") == len(tested):
        return "not reproduced"
    return "partly reproduced" if held else "undecided"


HEADLINE_ORDER: dict[str, int] = {"not reproduced": 0, "undecided": 1, "partly reproduced": 2, "reproduced": 3}


class Verdict(BaseModel):
    """What we conclude about the paper's claim: the headline its statements decide
    (HEADLINE_RULE, each statement by its checks of role `claim`), with what we observe in
    words. Checks of role `observation` pin what we observe and must hold. The stated status
    must be the headline the statements decide: else the spec's verdict is out of date."""

    model_config = strict_with(
        when(
            equals("status", ("partly reproduced", "not reproduced", "undecided", "not tested")),
            {"required": ["observed"], "properties": {"observed": {"pattern": r"\S"}}},
        )
    )
    status: Literal["reproduced", "partly reproduced", "not reproduced", "undecided", "not tested", "by checks"] = Field(
        ..., description="`by checks`: whatever the statements decide (for profiles not yet run)"
    )
    observed: str = Field("", description="what we observe, in words; required unless reproduced")

    def judge(self, statements: list[StatementVerdict], checks: list[CheckResult], untraced: tuple[str, ...] = ()) -> Judgement:
        """The headline to show and whether the spec's stated verdict is current (the class docstring);
        `untraced`: numbers its `observed:` text types that the report's tables do not print (prose.py)."""
        pinned = [c for c in checks if c.role == "observation" and not c.passed]
        decided = headline([s.status for s in statements])
        if untraced:
            typed = ", ".join(untraced)
            return Judgement(decided, False, f"`observed:` types numbers the report's tables do not print ({typed}); quote the tables' numbers", statements)
        if self.status == "by checks":
            return Judgement(decided, decided == "reproduced" and not pinned, "decided by the statements", statements)
        if pinned:
            return Judgement(decided, False, f"an observation the verdict rests on no longer holds ({pinned[0].statement})", statements)
        if decided != self.status:
            return Judgement(decided, False, f"the spec states *{self.status}*, its statements decide *{decided}*", statements)
        return Judgement(decided, True, "", statements)

    @model_validator(mode="after")
    def _explained(self) -> Verdict:
        if self.status in ("partly reproduced", "not reproduced", "undecided", "not tested") and not self.observed.strip():
            raise ValueError(f"a verdict of {self.status!r} needs `observed:` saying what we see instead")
        return self


@dataclass(frozen=True)
class Judgement:
    status: str  # the headline the statements decide, which the report shows
    current: bool  # whether the spec's stated verdict is that headline, with every observation holding
    why: str  # why not, where it is not current
    statements: list[StatementVerdict]


CLAIM_RULES = (
    "models have distinct names",
    "every model a check names, and every key of paper.final_gap and paper.curves, is one of the models",
    "a check's lr is in the lr grid of every model it reads",
    "a check's at_step is a recorded step of every model it reads, at every lr of its grid",
    "metric final_batch_loss (cross-entropy + L2 penalty) only where the runs have a penalty: convnet specs",
    "each profile, merged into the spec (mappings key by key, any other value replaced), is a valid spec",
    "a spec (or profile) with no check of role `claim` states `not tested` or `by checks`: observations decide no verdict",
    "statement ids are distinct; where there are statements, every claim check decides one (`decides:`) and no observation does; without statements no check has `decides:`",
)


class Claim(BaseModel):
    """What every spec has, whatever it trains: the claim, the paper, the verdict, seeds and checks.
    Subclasses add `models` and say which lrs and steps each model records."""

    model_config = strict_with(rules=CLAIM_RULES)
    PENALIZED: ClassVar[bool] = False  # whether runs record a penalty beside the loss (metric final_batch_loss)
    id: SpecId
    title: Line
    claim: str
    paper: PaperRef | None = Field(None, description="where the paper states the claim; omit for a claim beyond the paper")
    verdict: Verdict
    group: Literal["experiments", "theory", "maps"] = "experiments"
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(..., min_length=1, max_length=100, json_schema_extra=UNIQUE)
    statements: list[Statement] = Field(
        default_factory=list, max_length=20, description="the statements of the paper's claim, each decided by the claim checks that name it"
    )
    checks: list[Check] = Field(..., min_length=1, max_length=100)
    assumptions: list[str] = Field(default_factory=list)
    profiles: dict[ProfileName, dict[str, Any]] = Field(default_factory=dict, description="name -> overrides of this spec's keys")

    def judge(self, checks: list[CheckResult], untraced: tuple[str, ...] = ()) -> Judgement:
        """The headline the statements decide from `checks`, and whether the stated verdict is current."""
        return self.verdict.judge(statement_verdicts(self.statements, checks), checks, untraced)

    def budget(self) -> str:
        """The budget its runs train for, in a few words ("1,000,000 steps"); empty where it has none."""
        return ""

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

    def reference_errors(self) -> list[tuple[KeyPath, str]]:
        """Problems between fields: names that must exist, seeds that must be distinct."""
        problems: list[tuple[KeyPath, str]] = []
        names = self.model_names()
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((("models", i, "name"), f"model name {name!r} is used twice"))
        if len(set(self.seeds)) != len(self.seeds):
            problems.append((("seeds",), "seeds repeat a value"))
        for i, check in enumerate(self.checks):
            problems += self._check_errors(i, check, names)
        problems += self._statement_errors()
        if not any(c.role == "claim" for c in self.checks) and self.verdict.status not in ("not tested", "by checks"):
            problems.append(
                (
                    ("verdict", "status"),
                    f"no check has role `claim`, so nothing here decides *{self.verdict.status}*: state `not tested` (observations only) or make a check a claim check",
                )
            )
        for key in ("final_gap", "curves"):
            for name in getattr(self.paper, key) if self.paper else {}:
                if name not in names:
                    problems.append((("paper", key, name), f"no model named {name!r}"))
        return problems

    def _statement_errors(self) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        ids = [s.id for s in self.statements]
        for i, sid in enumerate(ids):
            if sid in ids[:i]:
                problems.append((("statements", i, "id"), f"statement id {sid!r} is used twice"))
        for i, check in enumerate(self.checks):
            if check.decides is not None and check.role == "observation":
                problems.append((("checks", i, "decides"), "an observation decides no statement; drop `decides:` or make it a claim check"))
            elif check.decides is not None and check.decides not in ids:
                hint = difflib.get_close_matches(check.decides, ids, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else (f"statements are {', '.join(ids)}" if ids else "the spec has no `statements:`")
                problems.append((("checks", i, "decides"), f"no statement {check.decides!r}; {fix}"))
            elif check.decides is None and check.role == "claim" and ids:
                problems.append((("checks", i), f"a claim check of a spec with statements decides one: add `decides:` ({', '.join(ids)})"))
        return problems

    def _check_errors(self, i: int, check: Check, names: list[str]) -> list[tuple[KeyPath, str]]:
        problems: list[tuple[KeyPath, str]] = []
        known = [name for _, name in check.model_refs() if name in names]
        lr = check.fixed_lr()
        lacking = [name for name in known if lr is not None and lr not in self.lr_grid(name)]
        if lacking:
            problems.append((("checks", i, "lr"), f"lr {lr:g} is not in the lr grid of {', '.join(map(repr, lacking))}"))
        at_step = check.read_step()
        off_grid = [name for name in known if at_step is not None and not self.records_step(name, at_step)]
        if off_grid:
            where = ", ".join(map(repr, off_grid))
            problems.append((("checks", i, "at_step"), f"step {at_step} is not a recorded step of {where}; use a multiple of record_every"))
        if check.read_metric() == "final_batch_loss" and not self.PENALIZED:
            problems.append((("checks", i, "metric"), "final_batch_loss is a convnet's cross-entropy plus its penalty; these runs have no penalty: use final_loss"))
        for key, name in check.model_refs():
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"models are {', '.join(names)}"
                problems.append((("checks", i) + key, f"no model named {name!r}; {fix}"))
        return problems
