"""Run a theory spec's probe once per seed and evaluate its value checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overparam.checks import Bounds, CheckResult, span
from overparam.kinds.theory import probes as theory
from overparam.kinds.theory.probes import ProbeResult
from overparam.kinds.theory.spec import EndToEndFlowProbe, NotAGradientProbe, PrecondSpectrumProbe, Probe, SingleOutputRuleProbe, ValueCheck

PROBES: dict[type, Callable[[Any, int], ProbeResult]] = {
    PrecondSpectrumProbe: lambda p, seed: theory.precond_spectrum(p.shapes, p.depths, seed),
    SingleOutputRuleProbe: lambda p, seed: theory.single_output_rule(p.dims, p.depths, seed),
    EndToEndFlowProbe: lambda p, seed: theory.end_to_end_flow(p.cases, p.lrs, p.horizon, p.weight_decay, seed),
    NotAGradientProbe: lambda p, seed: theory.not_a_gradient(p.d, p.p, p.depths, p.loops, p.points, seed),
}


def run_probe(probe: Probe, seed: int) -> ProbeResult:
    return PROBES[type(probe)](probe, seed)


def evaluate_value(check: ValueCheck, results: list[ProbeResult], seeds: list[int]) -> CheckResult:
    """Every seed's value of the metric must lie within [lo, hi]."""
    values = [r.metrics[check.metric] for r in results]
    bounds = Bounds(check.lo, check.hi)
    holds = [bounds.holds(v) for v in values]
    evidence = "; ".join(f"seed {s}: {v:.3g}" + ("" if ok else " ✗") for s, v, ok in zip(seeds, values, holds))
    margin = min(bounds.margin(v) for v in values)
    return CheckResult(all(holds), f"{check.metric} {bounds.text()}", evidence, tuple(values), margin, check.role, decides=check.decides, key=span(values))
