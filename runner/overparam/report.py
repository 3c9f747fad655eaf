"""The Markdown report of one claim (plus its figure), and the index of all claims."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from overparam import provenance
from overparam.atomic import write_whole
from overparam.checks import CheckResult
from overparam.claim import Claim, paper_text
from overparam.dataset import Dataset
from overparam.figures import gap_figure
from overparam.kinds.regression.models import ModelSpec
from overparam.kinds.regression.spec import Spec, Train
from overparam.results import ROUNDING, ModelResult, Results, median, metric_per_seed
from overparam.select import LrScore, score_text
from overparam.store import StoredRun


@dataclass(frozen=True)
class ReportInputs:
    spec: Any  # a regression spec, or another kind's with models and `train` (the convnet)
    spec_path: Path
    profile: str | None
    data: Dataset
    optima: dict[float, float]
    results: Results
    sweeps: dict[str, list[LrScore]]
    checks: list[CheckResult]
    stored: list[StoredRun]
    trained: int
    wall_s: float
    device: str


def table_row(*cells: object) -> str:
    """One Markdown table row. A '|' inside a cell (|xᵀw − y|^p) would end the cell: escaped."""
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def report_name(spec_id: str, profile: str | None) -> str:
    return spec_id if profile is None else f"{spec_id}-{profile}"


Panels = list[tuple[str, list[ModelResult]]]


def write_report(inputs: ReportInputs, reports: Path, panels: Panels, body: list[str]) -> Path:
    """The report of a claim whose runs are loss curves: the figure draws `panels` (title, the
    picked result of each model in it), and `body` (the kind's own sections) follows the checks."""
    name = report_name(inputs.spec.id, inputs.profile)
    figure = reports / "figures" / f"{name}.png"
    gap_figure(panels, f"{inputs.spec.title} [{inputs.profile or 'default'} profile]", figure)
    path = reports / f"{name}.md"
    write_atomic(path, render(inputs, f"figures/{figure.name}", body))
    return path


def regression_panels(inputs: ReportInputs) -> Panels:
    """One panel per ℓp exponent, L − L* of each model at its picked lr."""
    spec = inputs.spec
    return [
        (f"ℓ{p:g} loss − L* (distance from optimum)", [inputs.results.picked[m.name] for m in spec.models if spec.loss_of(m.name).p == p])
        for p in spec.exponents
    ]


def regression_body(inputs: ReportInputs) -> list[str]:
    return [_results_section(inputs), _sweep_section(inputs), _setup_section(inputs)]


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
    rows = [
        ("commit", provenance.git_commit(spec_path.resolve().parent)),
        ("versions", provenance.versions()),
        ("device", f"{provenance.device_name(device)}; runs trained on: {', '.join(devices)}"),
        *([("dtype", dtype)] if dtype else []),
        ("runs", f"{len(stored)} ({trained} trained now, {len(stored) - trained} from the run store)"),
        ("training time", f"{sum(r.wall_s for r in stored):.1f} s summed over the runs when they were trained"),
        ("wall time", f"{wall_s:.1f} s for this invocation"),
        ("date", provenance.now_utc()),
    ]
    return rows


def render(inputs: ReportInputs, figure: str, body: list[str]) -> str:
    spec = inputs.spec
    parts = [
        *header(spec, inputs.checks, inputs.spec_path, inputs.profile),
        _paper_section(inputs),
        f"![{spec.id}]({figure})\n",
        "Lines: median over seeds of L − L*; bands: min–max over seeds. Each model at its own picked learning rate.\n",
        checks_section(inputs.checks),
        *body,
        _assumptions_section(spec, inputs.data),
        _provenance_section(inputs),
    ]
    return "\n".join(parts)


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


def _paper_section(inputs: ReportInputs) -> str:
    ref = inputs.spec.paper
    lines = ["## The paper\n", paper_text(ref) + "\n"]
    if ref and ref.final_gap:
        at = f"{ref.at_step:,}" if ref.at_step else "the end"
        ours_at = _steps_text(inputs)
        lines.append(f"| model | paper: L − L* at step {at} | ours: L − L* at step {ours_at} (median over seeds) |")
        lines.append("|---|---|---|")
        for name, value in ref.final_gap.items():
            lines.append(f"| {name} | ≈{value:.2g} | {_median_final_gap(inputs.results.picked[name])} |")
        lines.append("")
        if ref.at_step and ref.at_step != inputs.spec.train.steps:  # a horizon schedule never equals it
            lines.append(
                f"Our run stops at step {ours_at}, the paper's at {at}: compare the ordering and the trend, not the values. The `paper` profile runs the paper's step count.\n"
            )
    return "\n".join(lines)


def checks_section(checks: list[CheckResult]) -> str:
    lines = ["## Checks\n", "| | check | evidence |", "|---|---|---|"]
    for check in checks:
        lines.append(table_row("PASS" if check.passed else "**FAIL**", check.statement, check.evidence))
    return "\n".join(lines) + "\n"


def _results_section(inputs: ReportInputs) -> str:
    results = list(inputs.results.picked.values())
    level = _common_gap_level(results)
    seeds = inputs.spec.seeds
    head = "| model | picked lr | " + " | ".join(f"L − L*, seed {s}" for s in seeds) + f" | steps to L − L* ≤ {level:.3g} (median) |"
    lines = ["## Results per model\n", head, "|" + "---|" * (3 + len(seeds))]
    for r in results:
        if r.lr is None:
            lines.append(f"| {r.name} | none: {r.why_none} |" + " — |" * (len(seeds) + 1))
            continue
        finals = " | ".join(f"{g:.4g}" for g in r.gaps[:, -1].tolist())
        lines.append(f"| {r.name} | {r.lr:g} | {finals} | {_steps_to(r, level)} |")
    lines.append(
        f"\nThe step column measures speed at one level every model reaches: the highest median final gap among the models ({level:.3g}).\n"
    )
    if any(r.at_optimum for r in results):
        lines.append(
            f"A gap shown as 0 is within rounding of L* (|L − L*| ≤ {ROUNDING[inputs.spec.train.dtype]:.2g}·L*), not a measured value.\n"
        )
    return "\n".join(lines)


def _sweep_section(inputs: ReportInputs) -> str:
    spec = inputs.spec
    rule = {
        "lowest_final_gap": "median over seeds of the final L − L*",
        "smallest": "median over seeds of the final L − L*; every lr is compared and the smallest is shown",
        "lowest_mean_log_gap": "median over seeds of the mean of log10(L − L*) over the run",
    }[spec.tune.pick]
    lines = [
        "## Learning-rate sweep\n",
        f"Score per lr ({rule}; lower is better; an lr where any seed diverged is never picked). **Bold**: picked.\n",
    ]
    lines.append("| lr | " + " | ".join(m.name for m in spec.models) + " |")
    lines.append("|---|" + "---|" * len(spec.models))
    for lr in spec.all_lrs:
        cells = []
        for model in spec.models:
            score = next((s for s in inputs.sweeps[model.name] if s.lr == lr), None)
            text = "—" if score is None else score_text(score, spec.tune.pick)
            cells.append(f"**{text}**" if inputs.results.picked[model.name].lr == lr else text)
        lines.append(f"| {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _setup_section(inputs: ReportInputs) -> str:
    spec, data = inputs.spec, inputs.data
    train = spec.train
    models = "; ".join(_model_text(m) for m in spec.models)
    rows = [
        ("data", f"{data.name}: {data.shape[0]} rows × {data.shape[1]} features"),
        ("loss", "; ".join(_loss_text(p, inputs.optima[p]) for p in spec.exponents)),
        ("models", models),
        ("optimizer", f"full-batch {_config_text(train.optimizer)}, weight decay {train.weight_decay:g}"),
        ("steps", _schedule_text(train)),
        ("init", _config_text(train.init)),
        ("learning rates", _grids_text(spec)),
        ("seeds", ", ".join(map(str, spec.seeds))),
        ("dtype", train.dtype),
    ]
    return key_value_table("Setup", rows)


def _assumptions_section(spec: Spec, data: Dataset) -> str:
    notes = list(spec.assumptions)
    if "class label" in data.details:
        notes.append("Data label: " + data.details["class label"] + ".")
    if not notes:
        return ""
    return "## Assumptions (choices the paper leaves open)\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def _provenance_section(inputs: ReportInputs) -> str:
    dtype = getattr(inputs.spec.train, "dtype", "float32")
    rows = run_provenance(inputs.spec_path, inputs.device, inputs.stored, inputs.trained, inputs.wall_s, dtype)
    rows += [(f"data {k}", v) for k, v in inputs.data.details.items() if k != "class label"]
    rows.append(("data fingerprint", inputs.data.fingerprint))
    return key_value_table("Provenance", rows)


def _grids_text(spec: Spec) -> str:
    own = [f"{m.name}: " + ", ".join(f"{v:g}" for v in spec.lr_grid(m.name)) for m in spec.models if m.lr]
    shared = ", ".join(f"{v:g}" for v in spec.tune.lr)
    text = f"{shared}" + (f" (own grids: {'; '.join(own)})" if own else "")
    return text + f"; pick: {spec.tune.pick}"


def _loss_text(p: float, optimum: float) -> str:
    method = "least squares" if p == 2 else "Newton"
    return f"ℓ{p:g}: mean over examples of |xᵀw − y|^{p:g} (no 1/p factor), L* = {optimum:.12g} (exact, {method})"


def _schedule_text(train: Train) -> str:
    if train.steps is not None:
        return f"{train.steps:,} (loss recorded every {train.record_every or 100:,})"
    return f"horizon η·steps = {train.horizon:g} at every lr (steps = horizon / lr), {train.records} recorded points per run"


def _steps_text(inputs: ReportInputs) -> str:
    steps = inputs.spec.train.steps
    return f"{steps:,}" if steps is not None else "the end of the horizon"


def _median_final_gap(result: ModelResult) -> str:
    if result.lr is None:
        return "no usable run"
    return f"{median(result.gaps[:, -1].tolist()):.3g}"


def _common_gap_level(results: list[ModelResult]) -> float:
    finals = [median(r.gaps[:, -1].tolist()) for r in results if r.lr is not None]
    return max(finals) if finals else math.nan


def _steps_to(result: ModelResult, level: float) -> str:
    per_seed = metric_per_seed(result, "steps_to_gap", gap=level)
    value = median(per_seed)
    return "not reached" if math.isinf(value) else f"{value:,.0f}"


def _model_text(model: ModelSpec) -> str:
    extras = [f"{key} {_config_text(value)}" for key in ("init", "optimizer", "loss") if (value := getattr(model, key, None)) is not None]
    return model.describe() + "".join(f", {extra}" for extra in extras)


def _config_text(config: BaseModel) -> str:
    """`kind (field value, …)` for an init, optimizer or loss config."""
    values = config.model_dump()
    kind = values.pop("kind")
    fields = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
    return f"{kind} ({fields})" if fields else str(kind)


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
