"""The theory specs pass as shipped, and each fails when its input is perturbed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from overparam.kinds.theory import probes as theory
from overparam.kinds.theory.probes import ProbeResult
from overparam.kinds.theory.values import evaluate_value, run_probe
from overparam.specload import load_spec


def spec(name: str):
    return load_spec(REPO / "specs" / f"{name}.yaml")


def failing(name: str, perturbed: ProbeResult) -> list[str]:
    s = spec(name)
    return [c.metric for c in s.checks if not evaluate_value(c, [perturbed], [s.seeds[0]]).passed]


@pytest.mark.parametrize("name", ["precond_spectrum", "single_output_rule", "not_a_gradient"])
def test_each_fast_theory_spec_passes_unperturbed(name: str) -> None:
    s = spec(name)
    result = run_probe(s.probe, s.seeds[0])
    assert all(evaluate_value(c, [result], [s.seeds[0]]).passed for c in s.checks), result.metrics


@pytest.mark.parametrize(
    "perturb,caught",
    [("exponent", {"eigenpair_deviation", "rule10_vs_P"}), ("asymmetric", {"asymmetry"}), ("sign", {"negative_eigenvalue"})],
)
def test_a_wrong_p_fails_the_claim_1_checks(perturb: str, caught: set[str]) -> None:
    probe = spec("precond_spectrum").probe
    perturbed = theory.precond_spectrum(probe.shapes, probe.depths, seed=0, perturb=perturb)
    assert caught <= set(failing("precond_spectrum", perturbed))


def test_rule_12_at_the_wrong_depth_does_not_match_rule_10() -> None:
    probe = spec("single_output_rule").probe
    perturbed = theory.single_output_rule(probe.dims, probe.depths, seed=0, depth_offset=1)
    assert failing("single_output_rule", perturbed) == ["max_relative_difference"]


def test_swapping_balanced_and_unbalanced_inits_fails_every_theorem_1_check() -> None:
    probe = spec("end_to_end_flow").probe
    perturbed = theory.end_to_end_flow(probe.cases[:1], probe.lrs, probe.horizon, probe.weight_decay, seed=0, swap_inits=True)
    assert set(failing("end_to_end_flow", perturbed)) == {"balanced_min_order", "balanced_max_deviation", "unbalanced_min_deviation"}


def test_a_true_gradient_field_has_no_circulation_so_theorem_2_checks_fail() -> None:
    probe = spec("not_a_gradient").probe
    perturbed = theory.not_a_gradient(probe.d, probe.p, probe.depths, probe.loops, probe.points, seed=0, as_gradient=True)
    assert {"rule12_depth2_max_circulation", "rule12_depth3_max_circulation"} <= set(failing("not_a_gradient", perturbed))


def test_the_control_and_the_quadrature_checks_of_theorem_2_can_fail_too() -> None:
    probe = spec("not_a_gradient").probe
    swapped = theory.not_a_gradient(probe.d, probe.p, probe.depths, probe.loops, probe.points, seed=0, gradient_as_rule=True)
    assert "gradient_field_max_circulation" in failing("not_a_gradient", swapped)
    coarse = theory.not_a_gradient(probe.d, probe.p, probe.depths, probe.loops, points=4, seed=0)
    assert "rule12_depth3_quadrature_error" in failing("not_a_gradient", coarse)


def test_a_check_on_a_metric_the_probe_does_not_measure_is_located(tmp_path: Path) -> None:
    from overparam.errors import OverparamError

    text = (REPO / "specs" / "single_output_rule.yaml").read_text().replace("metric: max_relative_difference", "metric: max_rel_diff")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(OverparamError) as caught:
        load_spec(path)
    (line,) = caught.value.lines
    assert "checks[0].metric: the single_output_rule probe measures max_relative_difference" in line
