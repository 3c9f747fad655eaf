"""The report of a claim whose numbers are runs' loss curves (the regression and convnet kinds):
the header, the paper's numbers beside ours, the figure, the checks, the kind's own sections
(`body`), assumptions and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overparam.checks import CheckResult
from overparam.claim import Claim, PaperRef, paper_text
from overparam.data.dataset import Dataset
from overparam.figures import gap_figure
from overparam.report import checks_section, header, key_value_table, report_files, run_provenance, table_row, write_atomic
from overparam.results import ModelResult, Results, median
from overparam.store import StoredRun
from overparam.sweep.select import LrScore


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
    warnings: list[str] = field(default_factory=list)  # picks at a grid's edge


Panels = list[tuple[str, list[ModelResult]]]


def write_report(inputs: ReportInputs, reports: Path, panels: Panels, caption: str, body: list[str], marked: str | None = None) -> Path:
    """The report of a claim whose runs are loss curves: the figure draws `panels` (title, the
    picked result of each model in it), with the paper's readings on the panel titled `marked`
    (every panel where None), and `caption` says what they show; `body` (the kind's own
    sections) follows the checks."""
    path, figure = report_files(reports, inputs.spec.id, inputs.profile)
    title = f"{inputs.spec.title} [{inputs.profile or 'default'} profile]"
    gap_figure(panels, title, figure, paper_marks(inputs.spec.paper), marked)
    write_atomic(path, render(inputs, f"figures/{figure.name}", caption, body))
    return path


def render(inputs: ReportInputs, figure: str, caption: str, body: list[str]) -> str:
    spec = inputs.spec
    parts = [
        *header(spec, inputs.checks, inputs.spec_path, inputs.profile, figure, caption),
        _paper_section(inputs),
        checks_section(inputs.checks),
        *body,
        _assumptions_section(spec, inputs.data),
        _provenance_section(inputs),
    ]
    return "\n".join(parts)


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
    if ref and ref.curves:
        lines.append(_matched_steps(ref, inputs.results.picked, inputs.spec.PENALIZED))
    return "\n".join(lines)


def _matched_steps(ref: PaperRef, picked: dict[str, ModelResult], penalized: bool) -> str:
    """The paper's curves read off its figure beside ours at the same steps (those we record);
    where runs record a penalty, the paper plots the loss with it (the convnet's batch loss)."""
    reading = ref.reading or "read off the paper's figure"
    quantity = "batch loss (+ penalty)" if penalized else "L − L*"
    if penalized:
        picked = {name: r.with_penalty() for name, r in picked.items() if r.penalty is not None}
    lines = [
        f"At matched steps ({reading}); the crosses on our figure mark the same readings.\n",
        f"| model | step | paper: {quantity} | ours: {quantity} (median over seeds) | ours / paper |",
        "|---|---|---|---|---|",
    ]
    for name in ref.curves:
        result = picked[name]
        for step, value in ref.readings(name):
            ours = _median_gap_at(result, step)
            if ours is None:
                continue
            lines.append(table_row(name, f"{step:,}", f"≈{value:.2g}", f"{ours:.3g}", f"{ours / value:.2f}"))
    beyond = [step for step in ref.curve_steps if step > max(float(r.steps[-1]) for r in picked.values())]
    if beyond:
        lines.append(f"\nThe paper's readings at steps {', '.join(f'{s:,}' for s in beyond)} lie beyond this run.")
    return "\n".join(lines) + "\n"


def _median_gap_at(result: ModelResult, step: int) -> float | None:
    """Median over seeds of L − L* at a recorded `step`; None where the run does not record it."""
    hits = (result.steps == step).nonzero()
    if result.lr is None or not len(hits):
        return None
    return median(result.gaps[:, int(hits[0, 0])].tolist())


def paper_marks(ref: PaperRef | None) -> dict[str, list[tuple[float, float]]]:
    """The paper's readings as (step, value) markers per model, for the figure: its curves, and
    for a model without one, its final value at `at_step`."""
    if ref is None:
        return {}
    marks = {name: [(float(step), value) for step, value in ref.readings(name)] for name in ref.curves}
    if ref.at_step is not None:
        for name, value in ref.final_gap.items():
            marks.setdefault(name, [(float(ref.at_step), value)])
    return marks


def _assumptions_section(spec: Claim, data: Dataset) -> str:
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


def _steps_text(inputs: ReportInputs) -> str:
    steps = inputs.spec.train.steps
    return f"{steps:,}" if steps is not None else "the end of the horizon"


def _median_final_gap(result: ModelResult) -> str:
    if result.lr is None:
        return "no usable run"
    return f"{median(result.gaps[:, -1].tolist()):.3g}"
