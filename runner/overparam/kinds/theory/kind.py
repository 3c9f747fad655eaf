"""How a theory spec is verified: its probe once per seed (seconds: no store, no progress bar),
value checks, a report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from overparam.checks import CheckResult, Stability
from overparam.kind import Kind
from overparam.kinds.theory.report import write_theory_report
from overparam.kinds.theory.spec import TheorySpec
from overparam.kinds.theory.values import evaluate_value, run_probe
from overparam.session import Options, Outcome, Progress, Session


def verify(spec: TheorySpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    results = [run_probe(spec.probe, seed) for seed in spec.seeds]
    checks = [with_stability(evaluate_value(check, results, spec.seeds)) for check in spec.checks]
    wall_s = time.perf_counter() - start
    report = write_theory_report(spec, spec_path, options.profile, results, checks, wall_s, options.reports)
    return Outcome(spec, checks, report, 0, 0, wall_s)


def with_stability(result: CheckResult) -> CheckResult:
    """A probe tunes nothing and reads no data: what can be said is how far its values sit from the bounds."""
    return replace(
        result,
        stability=Stability(
            None,
            "nothing is tuned: the probe computes at the spec's own points",
            None,
            f"no data to perturb; its values sit {result.margin:.2g} (relative) from the nearest bound",
        ),
    )


KIND = Kind("theory", TheorySpec, verify)
