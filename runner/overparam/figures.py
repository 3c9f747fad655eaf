"""The loss-gap figure of a report: log-scale L − L* against the iteration, like the paper's."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from overparam.results import ModelResult  # noqa: E402

# The paper's line colours, in its legend order.
COLOURS = ["tab:blue", "tab:green", "tab:red", "tab:cyan", "tab:purple", "tab:olive", "tab:orange", "tab:brown"]
GAP_FLOOR = 1e-16


def gap_figure(results: list[ModelResult], ylabel: str, title: str, path: Path) -> None:
    """Median over seeds as a line, the min–max over seeds as a band; written atomically."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for colour, result in zip(COLOURS * 8, results):
        if result.lr is None:
            ax.plot([], [], color=colour, label=f"{result.name} (all lrs diverged)")
            continue
        gaps = result.gaps.clamp_min(GAP_FLOOR)
        mid = gaps.median(dim=0).values
        label = f"{result.name} (lr {result.lr:g})"
        ax.plot(result.steps, mid, color=colour, lw=1.6, label=label)
        if gaps.shape[0] > 1:
            ax.fill_between(result.steps, gaps.min(dim=0).values, gaps.max(dim=0).values, color=colour, alpha=0.18, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_xlim(0, float(results[0].steps[-1]) if len(results[0].steps) else 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp.png")
    fig.savefig(partial, metadata={"Software": None})
    plt.close(fig)
    os.replace(partial, path)
