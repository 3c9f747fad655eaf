"""Each check kind, once passing and once failing, on hand-made results."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from overparam.checks import Check, evaluate, overtaking_step
from overparam.results import ModelResult, Results, metric_per_seed

STEPS = torch.tensor([0.0, 100.0, 200.0, 300.0])
OPTIMUM = 1.0


def result(name: str, *curves: list[float], lr: float | None = 0.1) -> ModelResult:
    losses = torch.tensor(curves, dtype=torch.float64) + OPTIMUM
    return ModelResult(name, lr, list(range(len(curves))), STEPS, losses, OPTIMUM, why_none="" if lr else "every lr of the grid diverged")


def as_results(picked: dict[str, ModelResult]) -> Results:
    return Results(picked, {name: {r.lr or 0.1: r} for name, r in picked.items()})


RESULTS = as_results(
    {
        "fast": result("fast", [5.0, 0.5, 0.1, 0.01], [5.0, 0.6, 0.2, 0.02]),
        "slow": result("slow", [5.0, 0.3, 0.2, 0.1], [5.0, 0.3, 0.25, 0.2]),
        "twin": result("twin", [5.0, 0.5, 0.1, 0.0100001], [5.0, 0.6, 0.2, 0.0200002]),
        "broken": result("broken", [5.0] * 4, [5.0] * 4, lr=None),
    }
)


def check(**data: object) -> Check:
    return TypeAdapter(Check).validate_python(data)


@pytest.mark.parametrize(
    "passing,failing",
    [
        (dict(kind="order", metric="final_gap", models=["fast", "slow"]), dict(kind="order", metric="final_gap", models=["slow", "fast"])),
        (
            dict(kind="ratio", metric="final_gap", model="slow", over="fast", at_least=5.0),
            dict(kind="ratio", metric="final_gap", model="slow", over="fast", at_least=11.0),
        ),
        (
            dict(kind="ratio", metric="final_gap", model="fast", over="slow", at_most=0.2),
            dict(kind="ratio", metric="final_gap", model="fast", over="slow", at_most=0.05),
        ),
        (
            dict(kind="bound", metric="final_loss", model="slow", lo=1.05, hi=1.3),
            dict(kind="bound", metric="final_loss", model="slow", hi=1.15),
        ),
        (
            dict(kind="bound", metric="steps_to_gap", gap=0.31, model="slow", hi=100),
            dict(kind="bound", metric="steps_to_gap", gap=0.15, model="slow", hi=300),
        ),
        (
            dict(kind="close", models=["fast", "twin"], curve="gap", tol=1e-4),
            dict(kind="close", models=["fast", "slow"], curve="gap", tol=0.5),
        ),
        (dict(kind="overtakes", models=["fast", "slow"], by=300), dict(kind="overtakes", models=["fast", "slow"], by=100)),
    ],
)
def test_each_check_kind_can_pass_and_fail(passing: dict, failing: dict) -> None:
    good, bad = evaluate(check(**passing), RESULTS), evaluate(check(**failing), RESULTS)
    assert good.passed, good.evidence
    assert not bad.passed, bad.evidence
    assert "✗" in bad.evidence  # the failing seed is marked


def test_median_rule_combines_seeds_before_comparing() -> None:
    mixed = as_results(
        {
            "a": result("a", [1, 1, 1, 0.1], [1, 1, 1, 0.5], [1, 1, 1, 0.2]),
            "b": result("b", [1, 1, 1, 0.3], [1, 1, 1, 0.3], [1, 1, 1, 0.3]),
        }
    )
    assert not evaluate(check(kind="order", metric="final_gap", models=["a", "b"]), mixed).passed
    median = evaluate(check(kind="order", metric="final_gap", models=["a", "b"], seeds="median"), mixed)
    assert median.passed and median.evidence.startswith("median: 0.2 < 0.3")


def test_a_model_without_usable_runs_fails_every_check_with_the_reason() -> None:
    outcome = evaluate(check(kind="order", metric="final_gap", models=["fast", "broken"]), RESULTS)
    assert not outcome.passed and "every lr of the grid diverged" in outcome.evidence


def test_steps_to_gap_is_infinite_when_never_reached() -> None:
    assert metric_per_seed(RESULTS.at("slow"), "steps_to_gap", gap=0.001) == [math.inf, math.inf]
    assert metric_per_seed(RESULTS.at("fast"), "steps_to_gap", gap=0.25) == [200.0, 200.0]


def test_overtaking_needs_a_model_to_be_behind_first() -> None:
    ahead = torch.tensor([0.1, 0.1, 0.1]), torch.tensor([0.2, 0.2, 0.2])
    assert overtaking_step(*ahead, STEPS[:3]) is None
    assert overtaking_step(torch.tensor([0.3, 0.1, 0.3]), torch.tensor([0.2, 0.2, 0.2]), STEPS[:3]) == math.inf
    assert overtaking_step(torch.tensor([0.3, 0.1, 0.1]), torch.tensor([0.2, 0.2, 0.2]), STEPS[:3]) == 100.0
    assert not evaluate(check(kind="overtakes", models=["slow", "slow"]), RESULTS).passed


def test_steps_to_gap_without_a_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="needs `gap"):
        check(kind="bound", metric="steps_to_gap", model="slow", hi=1)


def sweep(deviation_per_lr: dict[float, float]) -> Results:
    """Two models per lr whose curves differ by the given relative deviation, with W_e recorded."""
    by_lr: dict[str, dict[float, ModelResult]] = {"net": {}, "rule": {}}
    for lr, dev in deviation_per_lr.items():
        base = torch.tensor([[2.0, 1.5, 1.2, 1.1]], dtype=torch.float64)
        vectors = torch.ones(1, 4, 3, dtype=torch.float64)
        by_lr["rule"][lr] = ModelResult("rule", lr, [0], STEPS, base, OPTIMUM, vectors)
        by_lr["net"][lr] = ModelResult("net", lr, [0], STEPS, base * (1 + dev), OPTIMUM, vectors * (1 + dev))
    return Results({name: runs[min(runs)] for name, runs in by_lr.items()}, by_lr)


def test_converges_passes_when_the_deviation_shrinks_linearly_with_the_lr() -> None:
    good = sweep({1e-3: 1e-3, 2e-3: 2e-3, 4e-3: 4e-3})
    outcome = evaluate(check(kind="converges", models=["net", "rule"], curve="end_to_end", order_at_least=0.8, order_at_most=1.25), good)
    assert outcome.passed and "fitted order 1.000" in outcome.evidence


def test_converges_fails_when_the_deviation_does_not_shrink() -> None:
    flat = sweep({1e-3: 2e-3, 2e-3: 2e-3, 4e-3: 2.1e-3})
    outcome = evaluate(check(kind="converges", models=["net", "rule"], curve="loss", order_at_least=0.8, order_at_most=1.25), flat)
    assert not outcome.passed and "not shrinking" in outcome.evidence


def test_converges_fails_on_a_blow_up_at_the_largest_lr() -> None:
    """emulation_l2-paper's case: the deviation shrinks with the lr, but a blow-up at the largest
    lr fits an order of ≈4, not the claim's O(η); a one-sided bound let it pass."""
    blow_up = sweep({2.5e-4: 1e-4, 5e-4: 2e-4, 1e-3: 0.7})
    outcome = evaluate(check(kind="converges", models=["net", "rule"], curve="end_to_end", order_at_least=0.8, order_at_most=1.25), blow_up)
    assert not outcome.passed and outcome.evidence.endswith("✗"), outcome.evidence
    assert "order" in outcome.key


def test_overtakes_checks_when_the_crossing_comes() -> None:
    """The paper's ℓ4 curves cross at 2–2.5e5 steps; a crossing at 7e4 is the direction without the timing."""
    steps = torch.tensor([0, 50_000, 100_000, 150_000], dtype=torch.float64)
    early = ModelResult("deep", 1e-3, [0], steps, torch.tensor([[4.0, 2.0, 1.5, 1.4]], dtype=torch.float64), OPTIMUM)
    shallow = ModelResult("shallow", 1e-3, [0], steps, torch.tensor([[3.0, 2.5, 2.2, 2.1]], dtype=torch.float64), OPTIMUM)
    results = Results({"deep": early, "shallow": shallow}, {"deep": {1e-3: early}, "shallow": {1e-3: shallow}})
    anytime = evaluate(check(kind="overtakes", models=["deep", "shallow"]), results)
    window = evaluate(check(kind="overtakes", models=["deep", "shallow"], after=100_000, by=150_000, paper=[1e5, 1.5e5]), results)
    assert anytime.passed and not window.passed, window.evidence
    assert window.key == "deep overtakes shallow at step 50,000 (earlier) vs the paper's ≈100,000–150,000"
    with pytest.raises(ValidationError, match="later than by"):
        check(kind="overtakes", models=["deep", "shallow"], after=200, by=100)


def test_a_ratio_outside_the_papers_band_fails_the_magnitude() -> None:
    """ℓ4's 1-layer/3-layer ratio: ≈2.0 ours against the paper's ≈5.8 ± its reading precision."""
    results = as_results({"1-layer": result("1-layer", [8.0, 1.0, 0.5, 0.134]), "3-layer": result("3-layer", [8.0, 2.0, 0.4, 0.0666])})
    direction = evaluate(check(kind="ratio", metric="final_gap", model="1-layer", over="3-layer", at_least=1.5), results)
    magnitude = evaluate(check(kind="ratio", metric="final_gap", model="1-layer", over="3-layer", at_least=5.3, at_most=6.4, paper=[5.8]), results)
    assert direction.passed and not magnitude.passed
    assert magnitude.key == "1-layer/3-layer 2.01× vs the paper's ≈5.8×"


def test_close_can_compare_end_to_end_vectors_at_a_chosen_lr() -> None:
    results = sweep({1e-3: 1e-3, 4e-3: 0.1})
    assert evaluate(check(kind="close", models=["net", "rule"], curve="end_to_end", tol=0.01, lr=1e-3), results).passed
    assert not evaluate(check(kind="close", models=["net", "rule"], curve="end_to_end", tol=0.01, lr=4e-3), results).passed


def test_gaps_within_rounding_of_the_optimum_are_zero_and_make_no_ratio() -> None:
    """A gap of −6.9e-17 is rounding, not a result: shown as 0, and two of them give no ratio."""
    resolution = 2.0**-40 * OPTIMUM
    near = {
        name: ModelResult(
            name,
            0.1,
            [0],
            STEPS,
            torch.tensor([[5.0, 2.0, 1.0 + 1e-17, 1.0 - 6.9e-17]], dtype=torch.float64),
            OPTIMUM,
            resolution=resolution,
        )
        for name in ("a", "b")
    }
    assert near["a"].gaps[0, -1] == 0.0 and near["a"].at_optimum
    ratio = evaluate(check(kind="ratio", metric="final_gap", model="a", over="b", at_least=0.5, at_most=2.0), as_results(near))
    assert not ratio.passed and "0/0" in ratio.evidence
    # Without the rounding guard the ratio of the two rounding errors would be a number.
    raw = {n: ModelResult(n, 0.1, [0], STEPS, r.losses, OPTIMUM) for n, r in near.items()}
    assert evaluate(check(kind="ratio", metric="final_gap", model="a", over="b", at_most=2.0), as_results(raw)).passed


def test_final_batch_loss_adds_the_penalty_to_the_cross_entropy_and_can_pass_and_fail() -> None:
    """The convnet's plotted loss: a twin can be ahead on cross-entropy and behind once the penalty is added."""
    ce = {"original": [[3.0, 1.0, 0.5, 0.003]], "twin": [[3.0, 0.8, 0.3, 0.001]]}
    penalty = {"original": [[3.1, 2.0, 1.7, 1.58]], "twin": [[3.2, 2.1, 1.8, 1.64]]}
    picked = {
        name: ModelResult(name, 0.01, [0], STEPS, torch.tensor(ce[name], dtype=torch.float64), 0.0, penalty=torch.tensor(penalty[name], dtype=torch.float64))
        for name in ce
    }
    results = as_results(picked)
    assert metric_per_seed(picked["twin"], "final_batch_loss") == [0.001 + 1.64]
    on_cross_entropy = evaluate(check(kind="order", metric="final_loss", models=["twin", "original"]), results)
    on_batch_loss = evaluate(check(kind="order", metric="final_batch_loss", models=["twin", "original"]), results)
    assert on_cross_entropy.passed and not on_batch_loss.passed, on_batch_loss.evidence
    behind = evaluate(check(kind="order", metric="final_batch_loss", models=["original", "twin"]), results)
    assert behind.passed and "final_batch_loss" in behind.statement
