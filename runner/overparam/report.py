"""Markdown pieces every kind's report uses (header, verdict, checks, key–value tables, provenance,
whole-file writes), and the index of all claims."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from overparam import provenance
from overparam.atomic import write_whole
from overparam.checks import CheckResult
from overparam.claim import Claim
from overparam.store import StoredRun


def table_row(*cells: object) -> str:
    """One Markdown table row. A '|' inside a cell (|xᵀw − y|^p) would end the cell: escaped."""
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def report_name(spec_id: str, profile: str | None) -> str:
    return spec_id if profile is None else f"{spec_id}-{profile}"


def header(spec: Claim, checks: list[CheckResult], spec_path: Path, profile: str | None) -> list[str]:
    """The top of every report: title, status, the claim and the verdict."""
    judgement = spec.verdict.judge(checks)
    return [
        f"# {spec.title}\n",
        f"**{'PASS' if judgement.passed else 'FAIL'}**: {checks_summary(checks)} · spec `{spec_path.name}` · profile `{profile or 'default'}`\n",
        f"**Claim.** {spec.claim}\n",
        verdict_line(spec, checks),
    ]


def checks_summary(checks: list[CheckResult]) -> str:
    """ "claim checks 2/3 hold, observations 1/1; 1 fragile, none chaotic"."""
    parts = []
    for role, label in (("claim", "checks of the paper's claim"), ("observation", "observations")):
        members = [c for c in checks if c.role == role]
        if members:
            parts.append(f"{label} {sum(c.passed for c in members)}/{len(members)} hold")
    fragile = sum(bool(c.stability and c.stability.fragile) for c in checks)
    chaotic = sum(bool(c.stability and c.stability.chaotic) for c in checks)
    return ", ".join(parts) + f"; {fragile or 'none'} fragile, {chaotic or 'none'} chaotic"


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


def verdict_line(spec: Claim, checks: list[CheckResult]) -> str:
    """The verdict the checks support, with what the spec observed; where they do not support
    the stated one, why, instead of repeating the observation as fact."""
    verdict = spec.verdict
    judgement = verdict.judge(checks)
    if verdict.status == "by checks":
        return f"**Verdict: {judgement.status} ({judgement.why}).**" + (f" {verdict.observed}\n" if verdict.observed else "\n")
    if not judgement.passed:
        return (
            f"**Verdict: undecided.** The spec states *{verdict.status}*, but {judgement.why}: revisit the verdict against the "
            "numbers below." + (f" What the spec observed before: *{verdict.observed}*\n" if verdict.observed else "\n")
        )
    return f"**Verdict: {verdict.status}.**" + (f" {verdict.observed}\n" if verdict.observed else "\n")


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
    passed: bool
    verdict: str  # the status shown
    summary: str  # checks_summary
    shaky: list[str]  # "fragile: <statement>" / "chaotic: <statement>"
    date: str
    commit: str


def write_record(spec: Claim, checks: list[CheckResult], report: Path, profile: str | None) -> Path:
    judgement = spec.verdict.judge(checks)
    shaky = [f"{flag}: {c.statement}" for c in checks if c.stability for flag in ("fragile", "chaotic") if getattr(c.stability, flag)]
    record = Record(
        spec.id,
        profile or "default",
        report.name,
        judgement.passed,
        judgement.status,
        checks_summary(checks),
        shaky,
        provenance.now_utc(),
        provenance.git_commit(report.resolve().parent),
    )
    path = report.with_suffix(".json")
    write_atomic(path, json.dumps(asdict(record), indent=1, ensure_ascii=False) + "\n")
    return path


def read_record(path: Path) -> Record | None:
    """The record at `path`; None where there is none or it is not one (the index says "not run")."""
    try:
        return Record(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_index(specs: list[Claim], reports: Path) -> Path:
    """`reports/README.md`: per claim, by group, the default and the `paper` profile's evidence,
    read from the records beside their reports."""
    lines = [
        "# Claims of Arora, Cohen & Hazan (ICML 2018), verified\n",
        "Written by `overparam verify-all`; each row links the reports that hold its evidence. The verdict follows the checks of "
        "the paper's claim (reproduced only where they hold, robust to the next lower lr and calm to a one-ulp change of the data); "
        "PASS means the evidence supports the spec's stated verdict, FAIL that it no longer does.\n",
    ]
    for group, heading in (("experiments", "Experiments"), ("theory", "Theory"), ("maps", "Maps (beyond the paper)")):
        members = [spec for spec in specs if spec.group == group]
        if not members:
            continue
        lines += [
            f"## {heading}\n",
            "| claim | verdict (default profile) | checks | `paper` profile | fragile or chaotic | what we observe |",
            "|---|---|---|---|---|---|",
        ]
        for spec in members:
            default = read_record(reports / f"{report_name(spec.id, None)}.json")
            paper = _paper_cell(spec, reports)
            if default is None:
                lines.append(table_row(spec.title, "not run", "", paper, "", ""))
                continue
            status = f"{'PASS' if default.passed else '**FAIL**'}: {default.summary}"
            observed = spec.verdict.observed or "as the paper states"
            shaky = "; ".join(default.shaky) or "none"
            lines.append(table_row(f"[{spec.title}]({default.report})", default.verdict, status, paper, shaky, observed))
        lines.append("")
    lines.append(f"Generated {provenance.now_utc()} at commit {provenance.git_commit(reports.resolve().parent)}.\n")
    path = reports / "README.md"
    write_atomic(path, "\n".join(lines))
    return path


def _paper_cell(spec: Claim, reports: Path) -> str:
    if "paper" not in spec.profiles:
        return "no paper profile"
    name = report_name(spec.id, "paper")
    record = read_record(reports / f"{name}.json")
    if record is not None:
        shaky = f"; {len(record.shaky)} fragile or chaotic" if record.shaky else ""
        return f"[{record.verdict}]({record.report}): {'PASS' if record.passed else '**FAIL**'}{shaky} ({record.date[:10]}, {record.commit[:10]})"
    if (reports / f"{name}.md").exists():
        return f"[report]({name}.md) predates the evidence flags: rerun `--profile paper`"
    return "not run"
