"""The loss-gap figure of a report: log-scale L − L* against the iteration, like the paper's."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from overparam.atomic import write_whole  # noqa: E402
from overparam.results import ModelResult  # noqa: E402

__all__ = ["COLOURS", "LOWER", "gap_figure", "literal", "plt", "save_atomic"]


def literal(text: str) -> str:
    """A spec's text (a title, a model name) as matplotlib prints it as typed: "$…$" would be
    mathtext, and invalid mathtext crashes the drawing. (Log axes' tick labels need mathtext: it
    stays on.)"""
    return text.replace("$", r"\$")

# The paper's line colours, in its legend order.
COLOURS = ["tab:blue", "tab:green", "tab:red", "tab:cyan", "tab:purple", "tab:olive", "tab:orange", "tab:brown"]
GAP_FLOOR = 1e-16


def gap_figure(
    panels: list[tuple[str, list[ModelResult]]],
    title: str,
    path: Path,
    marks: dict[str, list[tuple[float, float]]] | None = None,
    marked: str | None = None,
) -> None:
    """One log-scale panel per (y label, models): median over seeds as a line, the min–max over
    seeds as a band; `marks` (model name -> (step, value)) drawn as crosses in the model's colour
    where its panel's steps reach, on the panel titled `marked` only where given (the one whose
    quantity the paper plots), else on every panel. Written atomically."""
    curves = max(len(results) for _, results in panels)
    below = curves > len(COLOURS)  # a legend that long would hide the curves: put it under them
    height = 4.8 + (0.16 * curves if below else 0.0)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), height), dpi=120, squeeze=False)
    for ax, (ylabel, results) in zip(axes[0], panels):
        _draw_panel(ax, results, ylabel, (marks or {}) if marked in (None, ylabel) else {}, below)
    fig.suptitle(textwrap.fill(literal(title), width=70 * len(panels)), fontsize=10)
    save_atomic(fig, path)


def save_atomic(fig: Figure, path: Path) -> None:
    """Lay out (the suptitle kept clear of the panels' labels), write whole or not at all
    (atomic.write_whole), and close."""
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.95) if fig.get_suptitle() else None)
    try:
        write_whole(path, lambda partial: fig.savefig(partial, format="png", metadata={"Software": None}))
    finally:
        plt.close(fig)


def _draw_panel(ax: Axes, results: list[ModelResult], ylabel: str, marks: dict[str, list[tuple[float, float]]], below: bool) -> None:
    marked = False
    for (colour, style), result in zip(_line_styles([r.name for r in results]), results):
        reach = float(result.steps[-1])
        points = [(step, value) for step, value in marks.get(result.name, []) if step <= reach]
        if points:
            ax.plot(*zip(*points), "x", color=colour, ms=8, mew=2)
            marked = True
        if result.lr is None:
            ax.plot([], [], color=colour, label=f"{literal(result.name)} (no usable lr)")
            continue
        gaps = result.gaps.clamp_min(GAP_FLOOR)
        mid = gaps.median(dim=0).values
        ax.plot(result.steps, mid, color=colour, lw=1.6, ls=style, label=f"{literal(result.name)} (lr {result.lr:g})")
        if gaps.shape[0] > 1:
            ax.fill_between(result.steps, gaps.min(dim=0).values, gaps.max(dim=0).values, color=colour, alpha=0.18, lw=0)
    if marked:  # one legend entry for every model's crosses, in no model's colour
        ax.plot([], [], "x", color="0.35", ms=8, mew=2, label="× the paper, read off its figure (each model's colour)")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(literal(ylabel))
    ax.grid(True, which="major", alpha=0.3)
    if below:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
    else:
        ax.legend(fontsize=8)
    ax.set_xlim(left=0)


LOWER = "(one lr step lower)"  # the note naming a model's run one lr step below its pick (drawn dotted)


def _line_styles(names: list[str]) -> list[tuple[object, str]]:
    """(colour, line style) per curve. A variant, named as another curve plus a parenthesised note
    ("Adam (TF1)" beside "Adam"), is drawn dashed in that curve's colour, or dotted where the note
    is LOWER (a run one lr step lower); every other curve takes the next colour of the paper's
    palette (or of tab20 when there are more curves than it has)."""
    bases = [name for name in names if _variant_of(name, names) is None]
    palette: list[object] = list(COLOURS) if len(bases) <= len(COLOURS) else [plt.get_cmap("tab20")(i % 20) for i in range(len(bases))]
    colour_of = dict(zip(bases, palette))
    styles = []
    for name in names:
        base = _variant_of(name, names)
        style = "-" if base is None else (":" if name.endswith(LOWER) else "--")
        styles.append((colour_of[base if base is not None else name], style))
    return styles


def _variant_of(name: str, names: list[str]) -> str | None:
    for other in names:
        if other != name and name.startswith(other + " (") and name.endswith(")") and _variant_of(other, names) is None:
            return other
    return None
