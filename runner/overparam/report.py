"""Markdown pieces every kind's report uses (header, verdict, checks, key–value tables, provenance,
whole-file writes), and the index of all claims."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from overparam import provenance
from overparam.atomic import write_whole
from overparam.checks import CheckResult
from overparam.claim import ASPECTS, HEADLINE_RULE, Claim, StatementVerdict
from overparam.errors import EnvironmentFault, OverparamError
from overparam.prose import untraced_numbers
from overparam.store import StoredRun
from overparam.strict import FILE_NAME


def table_row(*cells: object) -> str:
    """One Markdown table row. A '|' inside a cell (|xᵀw − y|^p) would end the cell: escaped."""
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def report_name(spec_id: str, profile: str | None) -> str:
    return spec_id if profile is None else f"{spec_id}-{profile}"


def report_files(reports: Path, spec_id: str, profile: str | None) -> tuple[Path, Path]:
    """The report's Markdown file and its figure, checked to lie inside `reports` (ids and profile
    names are validated names, never paths: this is the last guard, should one reach here)."""
    name = report_name(spec_id, profile)
    markdown, figure = reports / f"{name}.md", reports / "figures" / f"{name}.png"
    for path, folder in ((markdown, reports), (figure, reports / "figures")):
        if not re.fullmatch(FILE_NAME, name) or path.resolve().parent != folder.resolve():
            raise OverparamError(f"{path}: a report's name must be a plain file name inside {folder}; use an id and a profile name of [a-z0-9_-]")
    return markdown, figure


SUMMARY_STATEMENTS = 5  # bullets in a report's summary, so that it stays within 10 lines


def header(spec: Claim, checks: list[CheckResult], spec_path: Path, profile: str | None, figure: str | None = None, caption: str = "") -> list[str]:
    """The top of every report: a summary of at most 10 lines (the headline at its budget, each
    statement's verdict with its numbers and the paper's, the figure), then the claim, what we
    observe and the statements. Whether the spec's verdict is current closes the report
    (finish_report, once its tables are written)."""
    judgement = spec.judge(checks)
    statements = judgement.statements
    bullets = [
        f"- {_statement_label(s)}: **{s.status}**" + (" at this budget" if s.status == "not tested" else f": {s.key()}")
        for s in statements[:SUMMARY_STATEMENTS]
    ]
    if len(statements) > SUMMARY_STATEMENTS:
        bullets.append(f"- and {len(statements) - SUMMARY_STATEMENTS} more (Statements, below)")
    summary = [
        f"# {spec.title}\n",
        f"**{judgement.status.capitalize()}** {budget_text(spec, profile)}. Each statement of the claim, at its checks' numbers:\n"
        if any(c.role == "claim" for c in checks)
        else f"**Observations only** {budget_text(spec, profile)}: no check here decides a statement of the paper; what the runs show is below.\n",
        "\n".join(bullets) + "\n",
    ]
    if figure:
        summary.append(f"![{spec.id}]({figure})\n")
    if caption:
        summary.append(caption + "\n")
    return summary + [
        f"## Claim\n\n{spec.claim}\n",
        *([f"## What we observe\n\n{spec.verdict.observed}\n"] if spec.verdict.observed else []),
        statements_section(statements),
    ]


def budget_text(spec: Claim, profile: str | None) -> str:
    """ "at 1,000,000 steps, the paper's budget (profile `paper`)" or the default profile's caveat."""
    budget = spec.budget()
    at = f"at {budget}, " if budget else ""
    if profile is not None:
        return at + (f"the paper's budget (profile `{profile}`)" if profile.startswith("paper") else f"profile `{profile}`")
    if any(name.startswith("paper") for name in spec.profiles):
        return at + "a quick check below the paper's budget (default profile; the `paper` profile runs the paper's)"
    return at + "default profile" if at else "(default profile)"


def _statement_label(statement: StatementVerdict) -> str:
    return statement.aspect or statement.says


def statements_section(statements: list[StatementVerdict]) -> str:
    lines = [
        "## Statements\n",
        f"Each statement of the claim is decided by its checks of role *claim* (Checks, below): a firm failure → *not reproduced*; "
        f"else a fragile or chaotic check → *undecided*; else *reproduced*; no check at this budget → *not tested*. Headline: {HEADLINE_RULE}.\n",
        "| aspect | statement | verdict | ours, and the paper's where it gives a number |",
        "|---|---|---|---|",
    ]
    for s in statements:
        lines.append(table_row(s.aspect or "—", s.says, s.status, s.key()))
    return "\n".join(lines) + "\n"


def verification_section(spec: Claim, checks: list[CheckResult], spec_path: Path, profile: str | None, untraced: tuple[str, ...]) -> str:
    """Whether the spec's stated verdict is still the one its checks decide, with every number its
    prose types printed by the report's tables: a test of the spec, not a verdict on the paper."""
    judgement = spec.judge(checks, untraced)
    if judgement.current:
        state = (
            "**current**: the spec's stated verdict is the headline its statements decide, every observation holds, "
            "and every number *What we observe* types is one this report's tables print"
        )
    else:
        state = f"**out of date**: {judgement.why}; revisit the spec's verdict and what it observes against the numbers below"
    where = f"spec `{spec_path.name}`, profile `{profile or 'default'}`"
    return f"## Verification\n\nThe spec's verdict is {state} ({checks_summary(checks)}; {where}).\n"


def checks_summary(checks: list[CheckResult]) -> str:
    """ "checks of the paper's claim 2/3 hold, observations 1/1 hold; 1 fragile, none chaotic"."""
    parts = []
    for role, label in (("claim", "checks of the paper's claim"), ("observation", "observations")):
        members = [c for c in checks if c.role == role]
        if members:
            parts.append(f"{label} {sum(c.passed for c in members)}/{len(members)} hold")
    return ", ".join(parts) + f"; {_flag_count(checks, 'fragile')}, {_flag_count(checks, 'chaotic')}"


def _flag_count(checks: list[CheckResult], flag: str) -> str:
    """ "2 fragile", "none fragile", or "chaotic: not assessed" where no check was assessed for it."""
    assessed = [getattr(c.stability, flag) for c in checks if c.stability and getattr(c.stability, flag) is not None]
    if not assessed:
        return f"{flag}: not assessed"
    return f"{sum(assessed) or 'none'} {flag}"


def key_value_table(title: str, rows: list[tuple[str, str]]) -> str:
    """A `## title` section holding a two-column table of (what, value) rows."""
    return f"## {title}\n\n| | |\n|---|---|\n" + "\n".join(table_row(k, v) for k, v in rows) + "\n"


def run_provenance(
    spec_path: Path, device: str, stored: list[StoredRun], trained: int, wall_s: float, dtype: str | None = None
) -> list[tuple[str, str]]:
    """Provenance rows of a report whose numbers come from stored runs."""
    devices = sorted({r.device for r in stored})
    return [
        ("commit", provenance.git_commit(spec_path.resolve().parent)),
        ("versions", provenance.versions()),
        ("device", f"{provenance.device_name(device)}; runs trained on: {', '.join(devices)}"),
        *([("dtype", dtype)] if dtype else []),
        ("runs", f"{len(stored)} ({trained} trained now, {len(stored) - trained} from the run store)"),
        ("training time", f"{sum(r.wall_s for r in stored):.1f} s summed over the runs when they were trained"),
        ("wall time", f"{wall_s:.1f} s for this invocation"),
        ("date", provenance.now_utc()),
    ]


def checks_section(checks: list[CheckResult]) -> str:
    lines = [
        "## Checks\n",
        "Role *claim*: states the paper's claim and decides the verdict; *observation*: pins what we observe. "
        "*Robust* / *fragile*: the outcome stays / flips with the models moved from their picked lr to the next stable lr below. "
        "*Calm* / *chaotic*: twin runs on the data times (1 + ε) move the check's numbers by less / more than its margin.\n",
        "| | role | check | evidence | picks one step lower | data one ulp up |",
        "|---|---|---|---|---|---|",
    ]
    for check in checks:
        moved, twins = (check.stability.fragile_text, check.stability.chaotic_text) if check.stability else ("n/a", "n/a")
        lines.append(table_row("PASS" if check.passed else "**FAIL**", check.role, check.statement, check.evidence, moved, twins))
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write a report whole or not at all (atomic.write_whole)."""
    write_whole(path, lambda partial: partial.write_text(text, encoding="utf-8"))


@dataclass(frozen=True)
class Record:
    """What the index shows of one report, kept beside it as JSON (reports/<name>.json)."""

    spec_id: str
    profile: str  # "default" or the profile's name
    report: str  # the report's file name
    headline: str  # what the statements decide (claim.HEADLINE_RULE)
    budget: str  # e.g. "at 1,000,000 steps, the paper's budget (profile `paper`)"
    statements: list[dict[str, str]]  # per statement: aspect, says, status, key (its numbers), short (its first check's)
    verdict_current: bool  # whether the spec's stated verdict is the headline (a test of the spec, not of the paper)
    why: str  # why not, where it is not current
    checks: str  # checks_summary
    shaky: list[str]  # "fragile: <statement>" / "chaotic: <statement>"
    date: str
    commit: str
    digest: str = ""  # sha256 of the other fields (_record_digest): the index reads the file back

    def sealed(self) -> Record:
        return replace(self, digest=_record_digest(self))


def _record_digest(record: Record) -> str:
    fields = {k: v for k, v in asdict(record).items() if k != "digest"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def finish_report(spec: Claim, checks: list[CheckResult], report: Path, spec_path: Path, profile: str | None) -> tuple[str, ...]:
    """Append the verification to a written report: whether the spec's verdict is current, its
    prose's numbers traced to the report's tables (prose.py). Returns the untraced numbers."""
    text = report.read_text(encoding="utf-8")
    untraced = tuple(untraced_numbers(spec.verdict.observed, text))
    write_atomic(report, text.rstrip("\n") + "\n\n" + verification_section(spec, checks, spec_path, profile, untraced))
    return untraced


def write_record(spec: Claim, checks: list[CheckResult], report: Path, profile: str | None, untraced: tuple[str, ...] = ()) -> Path:
    judgement = spec.judge(checks, untraced)
    shaky = [f"{flag}: {c.statement}" for c in checks if c.stability for flag in ("fragile", "chaotic") if getattr(c.stability, flag)]
    statements = [{"aspect": s.aspect or "", "says": s.says, "status": s.status, "key": s.key(), "short": s.short()} for s in judgement.statements]
    record = Record(
        spec.id,
        profile or "default",
        report.name,
        judgement.status,
        budget_text(spec, profile),
        statements,
        judgement.current,
        judgement.why,
        checks_summary(checks),
        shaky,
        provenance.now_utc(),
        provenance.git_commit(report.resolve().parent),
    )
    path = report.with_suffix(".json")
    write_atomic(path, json.dumps(asdict(record.sealed()), indent=1, ensure_ascii=False) + "\n")
    return path


def read_record(path: Path) -> Record | None:
    """The record at `path`, None where there is none (the index says "not run"); one that is not
    a record or does not match its digest was damaged or edited: an EnvironmentFault (exit 3)."""
    if not path.exists():
        return None
    try:
        if not path.is_file():
            raise ValueError("not a regular file")
        record = Record(**json.loads(path.read_text(encoding="utf-8")))
        if record.digest != _record_digest(record):
            raise ValueError("it does not match its digest")
    except (OSError, ValueError, TypeError) as error:
        raise EnvironmentFault(f"{path}: not a record overparam wrote ({error}); rerun its spec to write it again") from error
    return record


CELL_WORDS = 25  # an index cell's most words


def write_index(specs: list[Claim], reports: Path) -> Path:
    """`reports/README.md`: per claim, by group, the headline and each aspect's verdict with its
    number, from the `paper` profile's record where it has run (the paper's budget decides), else
    the default profile's; linking both reports."""
    lines = [
        "# Claims of Arora, Cohen & Hazan (ICML 2018), verified\n",
        "Written by `overparam verify-all`. Each statement is decided by its checks at the paper's budget where the `paper` profile "
        "has run; a check decides only where robust (next lower lr) and calm (one-ulp data). "
        f"Headline: {HEADLINE_RULE}. ✗: the spec's stated verdict is out of date.\n",
    ]
    for group, heading in (("experiments", "Experiments"), ("theory", "Theory"), ("maps", "Maps (beyond the paper)")):
        members = [spec for spec in specs if spec.group == group]
        if not members:
            continue
        aspects = ASPECTS if group == "experiments" else ()
        columns = ["claim", "headline", *aspects, "reports"]
        lines += [f"## {heading}\n", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for spec in members:
            default = read_record(report_files(reports, spec.id, None)[0].with_suffix(".json"))
            paper = read_record(report_files(reports, spec.id, "paper")[0].with_suffix(".json")) if "paper" in spec.profiles else None
            deciding = paper or default
            links = ", ".join(f"[{r.profile}]({r.report})" for r in (default, paper) if r is not None) or "not run"
            if group == "experiments" and paper is None:  # theory and maps have no paper runs to wait for
                links += "; no paper profile" if "paper" not in spec.profiles else "; paper: not run"
            if deciding is None:
                lines.append(table_row(spec.title, "not run", *([""] * len(aspects)), links))
                continue
            mark = "" if deciding.verdict_current else " ✗"
            head = f"**{deciding.headline}**{mark} ({deciding.profile}){_tally(deciding)}"
            claim = f"[{spec.title}]({deciding.report})"
            lines.append(table_row(claim, head, *(_aspect_cell(deciding, aspect) for aspect in aspects), links))
        lines.append("")
    lines.append(f"Generated {provenance.now_utc()} at commit {provenance.git_commit(reports.resolve().parent)}.\n")
    path = reports / "README.md"
    write_atomic(path, "\n".join(lines))
    return path


def _tally(record: Record) -> str:
    """For a spec without aspects (each claim check its own statement): how many hold."""
    if any(s["aspect"] for s in record.statements):
        return ""
    tested = [s for s in record.statements if s["status"] != "not tested"]
    return f": {sum(s['status'] == 'reproduced' for s in tested)} of {len(tested)} checks hold" if tested else ""


def _aspect_cell(record: Record, aspect: str) -> str:
    """The verdicts of a record's statements of one aspect with their numbers, in at most CELL_WORDS words."""
    members = [s for s in record.statements if s["aspect"] == aspect]
    text = "; ".join(f"{s['status']}: {s['short']}" for s in members)
    words = text.split()
    return text if len(words) <= CELL_WORDS else " ".join(words[:CELL_WORDS]) + " …"
