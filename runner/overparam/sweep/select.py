"""Per-model learning-rate selection from the grid, by the spec's pick rule.

Seeds combine by the median of the pick score; an lr at which any seed diverged is never
picked. Every lr's result is kept too: for the report's sweep table, for checks that compare
learning rates, and for moving a pick one step (evidence.py). The lrs are those of the runs
given: the declared grid and any refinement (refine.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from overparam.plan import Run
from overparam.results import ROUNDING, ModelResult, Results, median, metric_per_seed
from overparam.store import StoredRun
from overparam.sweep.spec import RegressionSpec

GAP_FLOOR = 1e-300  # log of a gap that rounding made ≤ 0


@dataclass(frozen=True)
class LrScore:
    lr: float
    score: float | None  # None when a seed diverged
    diverged: str = ""  # "seed 1 at step 6000", for the report
    tiebreak: float = 0.0  # decides between equal scores (fastest: the final gap)

    @property
    def rank(self) -> tuple[float, float]:
        assert self.score is not None, "a diverged lr is never ranked"
        return self.score, self.tiebreak


def select_models(
    spec: RegressionSpec, runs: list[Run], stored: dict[str, StoredRun], optima: dict[float, float]
) -> tuple[Results, dict[str, list[LrScore]]]:
    """Each model's result at every lr and at its picked lr, and every lr's score (the sweep)."""
    by_lr: dict[str, dict[float, ModelResult]] = {}
    picked: dict[str, ModelResult] = {}
    sweeps: dict[str, list[LrScore]] = {}
    for model in spec.models:
        optimum = optima[spec.loss_of(model.name).p]
        seed_runs: dict[float, list[StoredRun]] = {}
        for run in runs:
            if run.model == model.name:
                seed_runs.setdefault(run.lr, []).append(stored[run.key])
        grid = sorted(seed_runs)
        by_lr[model.name] = {lr: model_result(model.name, lr, spec, seed_runs[lr], optimum) for lr in grid}
        sweep = [_score(lr, by_lr[model.name][lr], seed_runs[lr], spec) for lr in grid]
        sweeps[model.name] = sweep
        usable = [s for s in sweep if s.score is not None]
        if not usable:
            failed = by_lr[model.name][grid[0]]
            picked[model.name] = ModelResult(
                model.name, None, spec.seeds, failed.steps, failed.losses, optimum, why_none="every lr of the grid diverged"
            )
            continue
        best = usable[0] if spec.tune.pick == "smallest" else min(usable, key=lambda s: s.rank)
        picked[model.name] = by_lr[model.name][best.lr]
    return Results(picked, by_lr), sweeps


def model_result(name: str, lr: float, spec: RegressionSpec, seed_runs: list[StoredRun], optimum: float) -> ModelResult:
    """Model `name` at `lr`, one curve per seed (of `seed_runs`, in the spec's seed order)."""
    steps, every = spec.train.schedule(lr)
    axis = torch.arange(0, steps + 1, every, dtype=torch.float64)
    losses = torch.stack([r.losses for r in seed_runs])
    vectors = [r.end_to_end for r in seed_runs]
    present = [v for v in vectors if v is not None]
    end_to_end = torch.stack(present) if len(present) == len(vectors) else None
    diverged = [f"seed {s} at step {r.diverged_at}" for s, r in zip(spec.seeds, seed_runs) if r.diverged_at is not None]
    resolution = ROUNDING[spec.train.dtype] * abs(optimum)
    if diverged:
        return ModelResult(
            name, None, spec.seeds, axis, losses, optimum, end_to_end, "diverged: " + ", ".join(diverged), resolution=resolution
        )
    return ModelResult(name, lr, spec.seeds, axis, losses, optimum, end_to_end, resolution=resolution)


def _score(lr: float, result: ModelResult, seed_runs: list[StoredRun], spec: RegressionSpec) -> LrScore:
    diverged = [f"seed {seed} at step {r.diverged_at}" for seed, r in zip(spec.seeds, seed_runs) if r.diverged_at is not None]
    if diverged:
        return LrScore(lr, None, ", ".join(diverged))
    gaps = list(result.gaps)  # rounding-level gaps are 0: they do not rank learning rates
    final = median([float(g[-1]) for g in gaps])
    pick = spec.tune.pick
    if pick == "fastest":
        assert spec.tune.gap is not None, "the spec validation requires gap with pick: fastest"
        return LrScore(lr, median(metric_per_seed(result, "steps_to_gap", spec.tune.gap)), tiebreak=final)
    if pick in ("lowest_final_gap", "smallest"):
        return LrScore(lr, final)
    return LrScore(lr, median([float(g.clamp_min(GAP_FLOOR).log10().mean()) for g in gaps]))


def score_text(score: LrScore, pick: str) -> str:
    if score.score is None:
        return f"diverged ({score.diverged})"
    if pick == "fastest":
        steps = "never" if math.isinf(score.score) else f"{score.score:,.0f} steps"
        return f"{steps} (final gap {score.tiebreak:.4g})"
    return f"10^{score.score:.3f}" if pick == "lowest_mean_log_gap" else f"{score.score:.4g}"
