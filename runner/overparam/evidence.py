"""How far a check's outcome can be trusted, beside the outcome itself.

*Fragile*: the outcome flips when some of the models it reads are moved from their picked lr
one step lower (to the next lr below that did not diverge: after refinement, within the spec's
factor). A pick on the stability edge decides little if the step below decides otherwise.

*Chaotic*: twin runs on the data moved by one ulp (X·(1 + ε), ε the training dtype's machine
epsilon) move the numbers the check reads by more than its margin, the relative distance of
its closest number from flipping it. Near the edge, rounding alone decides such a check.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from overparam.checks import Check, CheckResult, ConvergesCheck, Stability, relative_distance
from overparam.results import ModelResult, Results
from overparam.sweep.select import LrScore


def read_lrs(check: Check, picked: dict[str, ModelResult]) -> dict[str, float]:
    """The lr at which the check reads each of its models (converges reads every lr: none here)."""
    if isinstance(check, ConvergesCheck):
        return {}
    fixed = check.fixed_lr()
    lrs = {}
    for _, name in check.model_refs():
        lr = fixed if fixed is not None else picked[name].lr
        if lr is not None:
            lrs[name] = lr
    return lrs


def assessed(check: Check, result: CheckResult, results: Results, sweeps: dict[str, list[LrScore]], twins: Results | None) -> CheckResult:
    """`result` with its stability: fragile to the picks one step lower, chaotic under the twins."""
    fragile, fragile_text = _fragility(check, result, results, sweeps)
    chaotic, chaotic_text = _chaos(check, result, twins)
    return replace(result, stability=Stability(fragile, fragile_text, chaotic, chaotic_text))


def step_below(sweep: list[LrScore], lr: float | None) -> float | None:
    """The largest lr below `lr` at which no seed diverged."""
    below = [s.lr for s in sweep if lr is not None and s.lr < lr and s.score is not None]
    return max(below, default=None)


def _fragility(check: Check, result: CheckResult, results: Results, sweeps: dict[str, list[LrScore]]) -> tuple[bool | None, str]:
    if isinstance(check, ConvergesCheck):
        return None, "reads every lr of the grid: no pick to move"
    if check.fixed_lr() is not None:
        return None, "reads a fixed lr: no pick to move"
    names = list(dict.fromkeys(name for _, name in check.model_refs()))
    lower = {name: step_below(sweeps.get(name, []), results.picked[name].lr) for name in names}
    movable = [name for name in names if lower[name] is not None]
    if not movable:
        return None, "no model it reads has a stable lr below its pick"
    flips = []
    combinations = [c for c in itertools.product((False, True), repeat=len(movable)) if any(c)]
    for moves in combinations:
        moved = {name: results.by_lr[name][lower[name]] for name, move in zip(movable, moves) if move}  # type: ignore[index]  # movable: lower is set
        outcome = check.evaluate(Results({**results.picked, **moved}, results.by_lr))
        if outcome.passed != result.passed:
            flips.append((", ".join(f"{name} at {r.lr:.3g}" for name, r in moved.items()), outcome))
    steps = ", ".join(f"{name} {lower[name]:.3g}" for name in movable)
    stuck = [name for name in names if lower[name] is None]
    stuck_text = f"; {', '.join(stuck)} cannot move (no stable lr below)" if stuck else ""
    return fragility(result, flips, len(combinations), steps, stuck_text)


def fragility(result: CheckResult, flips: list[tuple[str, CheckResult]], tried: int, moves: str, note: str = "") -> tuple[bool, str]:
    """Fragile when any of the `tried` moves (`flips`: what moved, the outcome) flipped the outcome."""
    if not flips:
        combinations = "the one move" if tried == 1 else f"all {tried} combinations"
        return False, f"robust: same outcome with {combinations} of one step lower ({moves}){note}"
    where, outcome = flips[0]
    verb = "fails" if result.passed else "holds"
    return True, f"fragile: {verb} with {where}: {outcome.evidence} ({len(flips)} of {tried} combinations flip){note}"


def _chaos(check: Check, result: CheckResult, twins: Results | None) -> tuple[bool | None, str]:
    if twins is None:
        return None, "no twins were run"
    if isinstance(check, ConvergesCheck):
        return None, "reads every lr of the grid: twins are run only at the lrs checks read"
    return chaos(result, check.evaluate(twins))


def chaos(result: CheckResult, twin: CheckResult) -> tuple[bool, str]:
    """Chaotic when the outcome on the twins differs, or they move its numbers by more than its margin."""
    change = max((relative_distance(a, b) for a, b in zip(result.values, twin.values)), default=0.0)
    flipped = twin.passed != result.passed
    numbers = f"the twins move its numbers by {change:.2g} (relative), its margin is {result.margin:.2g}"
    if not (flipped or change > result.margin):
        return False, f"calm: {numbers}"
    return True, f"chaotic: {numbers}" + (f"; on the twins it {'holds' if twin.passed else 'fails'}: {twin.evidence}" if flipped else "")
