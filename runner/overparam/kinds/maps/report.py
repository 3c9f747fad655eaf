"""The report of a map: a heatmap of the speed-up over depth 1, its spread over seeds, the checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.colors as mcolors
import matplotlib.ticker as mticker
import torch

from overparam.checks import CheckResult
from overparam.claim import paper_text
from overparam.data.dataset import Dataset
from overparam.figures import COLOURS, literal, plt, save_atomic
from overparam.kinds.maps.cells import Cell
from overparam.kinds.maps.spec import MapSpec
from overparam.losses import exact_mean_abs_power
from overparam.report import checks_section, header, key_value_table, report_files, run_provenance, write_atomic
from overparam.results import median
from overparam.store import StoredRun
from overparam.sweep.spec import RegressionSpec


@dataclass(frozen=True)
class MapInputs:
    spec: MapSpec
    spec_path: Path
    profile: str | None
    rows: dict[str, RegressionSpec]  # row name -> its regression spec
    data: dict[str, Dataset]  # row name -> its data
    cells: dict[tuple[str, int], Cell]
    checks: list[CheckResult]
    stored: list[StoredRun]
    trained: int
    wall_s: float
    device: str
    facts: dict[str, DataFacts]  # row name -> its data's exact optimum and starting point


@dataclass(frozen=True)
class DataFacts:
    """What a row's data makes of its ℓp problem: the exact optimum and where w = 0 starts."""

    rows: int
    loss_star: float
    start_gap: float  # L(w = 0) − L*
    w_star_norm: float
    kurtosis: float  # E y⁴ / (E y²)²: for z-scored y, the ℓ4 loss at w = 0


def data_facts(data: Dataset, p: float, optimum: tuple[torch.Tensor, float]) -> DataFacts:
    w_star, loss_star = optimum
    start = exact_mean_abs_power(data.y, p)  # L(w = 0)
    kurtosis = exact_mean_abs_power(data.y, 4.0) / exact_mean_abs_power(data.y, 2.0) ** 2
    return DataFacts(data.X.shape[0], loss_star, start - loss_star, float(w_star.norm()), kurtosis)


def write_map_report(inputs: MapInputs, reports: Path) -> Path:
    spec = inputs.spec
    path, figure = report_files(reports, spec.id, inputs.profile)
    _map_figure(inputs, figure)
    parts = [
        *header(spec, inputs.checks, inputs.spec_path, inputs.profile, f"figures/{figure.name}"),
        "## The paper\n",
        paper_text(spec.paper) + "\n",
        "Speed-up = final L − L* of depth 1 / final L − L* of depth N after "
        f"{spec.train.steps:,} steps, each at its own tuned lr, seed by seed: above 1, depth helps "
        "(a gap below 1e-12·max(1, L*) is rounding and counts as converged). "
        "Heatmap: median over seeds (with the min–max over seeds); right: the same with min–max bands.\n",
        checks_section(inputs.checks),
        _cells_table(inputs),
        _facts_table(inputs) if inputs.spec.rows.axis == "data" else "",
        _lr_table(inputs),
        _setup(inputs),
        "## Assumptions\n\n" + "\n".join(f"- {a}" for a in spec.assumptions) + "\n" if spec.assumptions else "",
        _provenance(inputs),
    ]
    write_atomic(path, "\n".join(p for p in parts if p))
    return path


def _depths(inputs: MapInputs) -> list[int]:
    return sorted(set(inputs.spec.depths))


def _cell_text(cell: Cell) -> str:
    if cell.speedups is None:
        return "no usable run"
    return f"{cell.median:.3g} ({min(cell.speedups):.3g}–{max(cell.speedups):.3g})"


def _cells_table(inputs: MapInputs) -> str:
    depths = _depths(inputs)
    lines = [
        "## Speed-up over depth 1 per cell\n",
        "Median over seeds (min–max over seeds).\n",
        f"| {inputs.spec.rows.axis} | " + " | ".join(f"depth {n}" for n in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for row in inputs.rows:
        lines.append(f"| {row} | " + " | ".join(_cell_text(inputs.cells[row, n]) for n in depths) + " |")
    return "\n".join(lines) + "\n"


def _facts_table(inputs: MapInputs) -> str:
    """Per data row: how far w = 0 starts from the exact optimum, and how large that optimum is."""
    lines = [
        "## The data of each row\n",
        "The exact optimum of the depth-1 problem on each row's data (least squares for p = 2, Newton "
        "otherwise), the gap the near-zero inits start from, and the target's kurtosis (for a z-scored "
        "target, the ℓ4 loss at w = 0).\n",
        "| row | rows | L* | L(w = 0) − L* | ‖w*‖ | kurtosis of y |",
        "|---|---|---|---|---|---|",
    ]
    for row in inputs.rows:
        f = inputs.facts[row]
        lines.append(f"| {row} | {f.rows} | {f.loss_star:.4g} | {f.start_gap:.4g} | {f.w_star_norm:.4g} | {f.kurtosis:.3g} |")
    return "\n".join(lines) + "\n"


def _lr_table(inputs: MapInputs) -> str:
    depths = _depths(inputs)
    lines = [
        "## Tuned learning rates\n",
        "Per row and depth, the lr with the lowest median final gap among those where no seed diverged"
        + _refine_text(inputs.spec.tune.refine)
        + ".\n",
        f"| {inputs.spec.rows.axis} | grid | depth 1 | " + " | ".join(f"depth {n}" for n in depths) + " |",
        "|---|---|---|" + "---|" * len(depths),
    ]
    for row, spec in inputs.rows.items():
        first = inputs.cells[row, depths[0]]
        grid = ", ".join(f"{lr:g}" for lr in spec.tune.lr)
        lrs = [_lr_text(inputs.cells[row, n].lr, spec.tune.lr) for n in depths]
        lines.append(f"| {row} | {grid} | {_lr_text(first.baseline_lr, spec.tune.lr)} | " + " | ".join(lrs) + " |")
    lines.append(
        "\n↑ / ↓: the pick is the largest / smallest lr of its grid, so the best lr may lie beyond it; where every lr "
        "converges to rounding within the budget, or none makes progress, the smallest is picked among equals and the edge is immaterial."
    )
    return "\n".join(lines) + "\n"


def _refine_text(refine: int | None) -> str:
    if refine is None:
        return ", resolved to the grid's step (no refinement)"
    return f"; each pick refined until bracketed within a factor 2^(1/{refine}) = {2 ** (1 / refine):.3f} by lrs run around it (not shown in the grid)"


def _lr_text(lr: float | None, grid: list[float]) -> str:
    if lr is None:
        return "none (every lr diverged)"
    return f"{lr:g}" + (" ↑" if lr == max(grid) else " ↓" if lr == min(grid) else "")


def _setup(inputs: MapInputs) -> str:
    spec = inputs.spec
    train = spec.train
    rows = [
        ("rows", f"{spec.rows.axis}: " + ", ".join(inputs.rows)),
        ("depths", "1 (the baseline), " + ", ".join(map(str, _depths(inputs)))),
        ("data", "; ".join(sorted({d.name for d in inputs.data.values()}))),
        ("loss", "ℓp: mean over examples of |xᵀw − y|^p (no 1/p factor); L* exact per row (least squares for p = 2, Newton otherwise)"),
        ("width", "the row value" if spec.rows.axis == "width" else str(spec.width)),
        ("optimizer", f"full-batch {train.optimizer.kind}, weight decay {train.weight_decay:g}"),
        ("steps", f"{train.steps:,} (loss recorded every {train.record_every or 100:,})"),
        ("init", "normal, std = the row value" if spec.rows.axis == "init_std" else train.init.model_dump_json()),
        ("seeds", ", ".join(map(str, spec.seeds))),
        ("dtype", train.dtype),
    ]
    return key_value_table("Setup", rows)


def _provenance(inputs: MapInputs) -> str:
    fingerprints = ", ".join(sorted({d.fingerprint for d in inputs.data.values()}))
    rows = run_provenance(inputs.spec_path, inputs.device, inputs.stored, inputs.trained, inputs.wall_s)
    return key_value_table("Provenance", [*rows, ("data fingerprints", fingerprints)])


def _map_figure(inputs: MapInputs, path: Path) -> None:
    rows, depths = list(inputs.rows), _depths(inputs)
    medians = [[_log_median(inputs.cells[row, n]) for n in depths] for row in rows]
    finite = [abs(v) for line in medians for v in line if not math.isnan(v)]
    reach = max(finite + [math.log10(2.0)])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.8, 0.5 * len(rows) + 3.6), dpi=120)
    image = left.imshow(medians, cmap="RdBu", norm=mcolors.Normalize(-reach, reach), aspect="auto")
    for i, row in enumerate(rows):
        for j, n in enumerate(depths):
            dark = abs(medians[i][j]) > 0.6 * reach  # NaN compares False: black text on a blank cell
            colour = "white" if dark else "black"
            left.text(j, i, _cell_text(inputs.cells[row, n]).replace(" (", "\n("), ha="center", va="center", fontsize=7, color=colour)
    left.set_xticks(range(len(depths)), [f"depth {n}" for n in depths])
    left.set_yticks(range(len(rows)), [literal(row) for row in rows])
    left.set_title("speed-up over depth 1 (median over seeds)", fontsize=9)
    bar = fig.colorbar(image, ax=left)
    bar.set_label("log10 speed-up (blue: depth helps)")
    palette: list[Any] = COLOURS if len(rows) <= len(COLOURS) else [plt.get_cmap("tab20")(i) for i in range(len(rows))]
    for colour, row in zip(palette, rows):
        cells = [inputs.cells[row, n] for n in depths]
        xs = [n for n, c in zip(depths, cells) if c.speedups is not None]
        usable = [c.speedups for c in cells if c.speedups is not None]
        right.plot(xs, [median(s) for s in usable], marker="o", color=colour, label=literal(row))
        right.fill_between(xs, [min(s) for s in usable], [max(s) for s in usable], color=colour, alpha=0.18, lw=0)
    right.axhline(1.0, color="black", lw=0.8)
    right.set_yscale("log")
    plain = mticker.FuncFormatter(lambda value, _: f"{value:g}")  # "2", not "2×10⁰"
    right.yaxis.set_major_formatter(plain)
    right.yaxis.set_minor_formatter(plain)
    right.set_xticks(depths)
    right.set_xlabel("depth N")
    right.set_ylabel("speed-up over depth 1")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(literal(inputs.spec.title), fontsize=10)
    save_atomic(fig, path)


def _log_median(cell: Cell) -> float:
    value = cell.median
    return math.log10(value) if value is not None and value > 0 else math.nan
