"""Per-model learning-rate selection from the grid, by the spec's pick rule.

Seeds combine by the median of the pick score; an lr at which any seed diverged is never
picked. The sweep (every lr's score) is kept for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from overparam.plan import Run
from overparam.results import ModelResult, median
from overparam.spec import Spec
from overparam.store import StoredRun

GAP_FLOOR = 1e-300  # log of a gap that rounding made ≤ 0


@dataclass(frozen=True)
class LrScore:
    lr: float
    score: float | None  # None when a seed diverged
    diverged: str = ""  # "seed 1 at step 6000", for the report


def select_models(
    spec: Spec, runs: list[Run], stored: dict[str, StoredRun], optimum: float
) -> tuple[dict[str, ModelResult], dict[str, list[LrScore]]]:
    """Each model's result at its picked lr, and every lr's score (the sweep)."""
    steps = torch.arange(0, spec.train.steps + 1, spec.train.record_every, dtype=torch.float64)
    results: dict[str, ModelResult] = {}
    sweeps: dict[str, list[LrScore]] = {}
    for model in spec.models:
        by_lr: dict[float, list[StoredRun]] = {}
        for run in runs:
            if run.model == model.name:
                by_lr.setdefault(run.lr, []).append(stored[run.key])
        sweep = [_score(lr, by_lr[lr], spec.seeds, optimum, spec.tune.pick) for lr in spec.tune.lr]
        sweeps[model.name] = sweep
        usable = [s for s in sweep if s.score is not None]
        if not usable:
            empty = torch.empty(len(spec.seeds), len(steps), dtype=torch.float64)
            results[model.name] = ModelResult(model.name, None, spec.seeds, steps, empty, optimum, "every lr of the grid diverged")
            continue
        best = min(usable, key=lambda s: s.score)  # type: ignore[arg-type, return-value]
        losses = torch.stack([r.losses for r in by_lr[best.lr]])
        results[model.name] = ModelResult(model.name, best.lr, spec.seeds, steps, losses, optimum)
    return results, sweeps


def _score(lr: float, seed_runs: list[StoredRun], seeds: list[int], optimum: float, pick: str) -> LrScore:
    diverged = [f"seed {seed} at step {r.diverged_at}" for seed, r in zip(seeds, seed_runs) if r.diverged_at is not None]
    if diverged:
        return LrScore(lr, None, ", ".join(diverged))
    gaps = [r.losses - optimum for r in seed_runs]
    if pick == "lowest_final_gap":
        return LrScore(lr, median([float(g[-1]) for g in gaps]))
    return LrScore(lr, median([float(g.clamp_min(GAP_FLOOR).log10().mean()) for g in gaps]))


def score_text(score: LrScore, pick: str) -> str:
    if score.score is None:
        return f"diverged ({score.diverged})"
    return f"{score.score:.4g}" if pick == "lowest_final_gap" else f"10^{score.score:.3f}"
