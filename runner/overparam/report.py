"""Markdown pieces every kind's report uses (header, verdict, checks, key–value tables, provenance,
whole-file writes), and the index of all claims."""

from __future__ import annotations

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
    passed = sum(c.passed for c in checks)
    status = "PASS" if passed == len(checks) else "FAIL"
    return [
        f"# {spec.title}\n",
        f"**{status}**: {passed} of {len(checks)} checks hold · spec `{spec_path.name}` · profile `{profile or 'default'}`\n",
        f"**Claim.** {spec.claim}\n",
        verdict_line(spec, passed == len(checks)),
    ]


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


def verdict_line(spec: Claim, passed: bool) -> str:
    """The spec's verdict and what it observed, unless its checks failed: then the observation no
    longer holds, and the report says so instead of repeating it as fact."""
    verdict = spec.verdict
    if verdict.status == "by checks":
        return f"**Verdict: {verdict.decided(passed)} (decided by the checks, which state the paper's claim).**" + (
            f" {verdict.observed}\n" if verdict.observed and passed else "\n"
        )
    if not passed:
        return (
            f"**Verdict: undecided.** The spec's verdict ({verdict.status}) rests on observations its checks test, and a check "
            "fails below: the evidence no longer supports it. Revisit the verdict against the numbers below."
            + (f" What the spec observed before: *{verdict.observed}*\n" if verdict.observed else "\n")
        )
    return f"**Verdict: {verdict.status}.**" + (f" {verdict.observed}\n" if verdict.observed else "\n")


def checks_section(checks: list[CheckResult]) -> str:
    lines = ["## Checks\n", "| | check | evidence |", "|---|---|---|"]
    for check in checks:
        lines.append(table_row("PASS" if check.passed else "**FAIL**", check.statement, check.evidence))
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write a report whole or not at all (atomic.write_whole)."""
    write_whole(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def write_index(rows: list[tuple[Claim, str, bool, str]], reports: Path) -> Path:
    """`reports/README.md`: one row per claim (spec, report file, passed, checks summary), by group."""
    lines = [
        "# Claims of Arora, Cohen & Hazan (ICML 2018), verified\n",
        "Written by `overparam verify-all`; each row links the report that holds its evidence. "
        "The verdict is the spec's conclusion about the paper's claim; the checks test the observations behind it "
        "(FAIL means the evidence no longer supports the verdict).\n",
    ]
    for group, heading in (("experiments", "Experiments"), ("theory", "Theory"), ("maps", "Maps (beyond the paper)")):
        members = [row for row in rows if row[0].group == group]
        if not members:
            continue
        lines += [
            f"## {heading}\n",
            "| claim | verdict | checks | what the paper states | what we observe |",
            "|---|---|---|---|---|",
        ]
        for spec, report, passed, summary in members:
            statement = (spec.paper.statement if spec.paper else "") or spec.claim
            checks = f"{'PASS' if passed else '**FAIL**'} {summary}"
            observed = spec.verdict.observed or "as the paper states"
            if not passed and spec.verdict.status != "by checks":
                observed = f"a check fails: the evidence no longer supports the stated verdict ({spec.verdict.status})"
            lines.append(f"| [{spec.title}]({report}) | {spec.verdict.decided(passed)} | {checks} | {statement} | {observed} |")
        lines.append("")
    lines.append(f"Generated {provenance.now_utc()} at commit {provenance.git_commit(reports.resolve().parent)}.\n")
    path = reports / "README.md"
    write_atomic(path, "\n".join(lines))
    return path
