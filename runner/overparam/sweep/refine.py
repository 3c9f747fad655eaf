"""Learning-rate refinement: bracket each model's pick between lrs within the spec's factor.

A declared grid resolves the stability edge only to its step (√2 or 2), and a pick one step
below a diverged lr can sit anywhere in that step. Each round runs the geometric midpoint
between the pick and each neighbour farther than the factor (above all the diverged one above
it), then picks again over everything run; it stops when both neighbours of every pick are
within the factor. The midpoints are ordinary runs: stored, resumable, batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from overparam.data.dataset import Dataset
from overparam.plan import Run
from overparam.results import Results
from overparam.session import RunFetcher
from overparam.store import StoredRun
from overparam.sweep.plan import run_config
from overparam.sweep.select import LrScore, select_models
from overparam.sweep.spec import RegressionSpec

SIGNIFICANT = 3  # refined lrs are kept to 3 significant digits, readable and retypable into a spec
SLACK = 1.01  # ... so "within a factor" allows the 1% that rounding a midpoint can add
MAX_ROUNDS = 8  # a grid step of 2^8 halves to 2^(1/8) in 6 rounds


@dataclass
class Tuning:
    """One regression problem being tuned: its spec, its runs so far, and their picks."""

    spec: RegressionSpec
    dataset: Dataset  # its runs train on
    runs: list[Run]
    optima: dict[float, float]
    results: Results | None = None
    sweeps: dict[str, list[LrScore]] | None = None

    def pick(self, stored: dict[str, StoredRun]) -> None:
        self.results, self.sweeps = select_models(self.spec, self.runs, stored, self.optima)

    def next_round(self) -> list[Run]:
        """The runs that bracket every pick more tightly, or none when each is bracketed."""
        if self.spec.tune.refine is None or self.results is None or self.sweeps is None:
            return []
        factor = 2.0 ** (1.0 / self.spec.tune.refine)
        runs = []
        for model in self.spec.models:
            pick = self.results.picked[model.name].lr
            if pick is None:
                continue
            for lr in midpoints([s.lr for s in self.sweeps[model.name]], pick, factor):
                for seed in self.spec.seeds:
                    config = run_config(self.spec, model, lr, seed)
                    runs.append(Run(model.name, lr, seed, config, config.key(self.dataset.fingerprint)))
        return runs


def midpoints(lrs: list[float], pick: float, factor: float) -> list[float]:
    """The geometric midpoints between `pick` and each neighbour in `lrs` (ascending) farther
    than `factor` from it, rounded to SIGNIFICANT digits."""
    i = lrs.index(pick)
    found = []
    for j in (i - 1, i + 1):
        if 0 <= j < len(lrs):
            low, high = sorted((pick, lrs[j]))
            if high / low > factor * SLACK:
                middle = float(f"{math.sqrt(low * high):.{SIGNIFICANT}g}")
                if low < middle < high:
                    found.append(middle)
    return found


def tune(problems: list[Tuning], fetcher: RunFetcher, label: str, stored: dict[str, StoredRun]) -> int:
    """Pick for every problem, refining until each pick is bracketed; the refining runs of all
    problems train together, each on its problem's data, and join `stored`. Returns the rounds run."""
    for problem in problems:
        problem.pick(stored)
    data_of: dict[str, Dataset] = {}  # run key → the data it trains on
    for round_ in range(MAX_ROUNDS):
        todo = [(problem, problem.next_round()) for problem in problems]
        runs = list({run.key: run for _, runs in todo for run in runs}.values())
        if not runs:
            return round_
        data_of.update({run.key: problem.dataset for problem, new in todo for run in new})
        stored.update(fetcher.fetch(label, runs, lambda run: data_of[run.key]))
        for problem, new in todo:
            if new:
                problem.runs += new
                problem.pick(stored)
    return MAX_ROUNDS


def edge_warnings(spec: RegressionSpec, results: Results, sweeps: dict[str, list[LrScore]]) -> list[str]:
    """A pick at either end of its grid: the best lr may lie beyond it (not for `smallest`,
    which takes the grid's end by design)."""
    if spec.tune.pick == "smallest":
        return []
    warnings = []
    for name, sweep in sweeps.items():
        lr = results.picked[name].lr
        if lr is None or len(sweep) < 2:
            continue
        if lr == sweep[-1].lr:
            warnings.append(f"{name}: the picked lr {lr:g} is the largest of its grid (none above diverged); extend the grid upward")
        elif lr == sweep[0].lr:
            warnings.append(f"{name}: the picked lr {lr:g} is the smallest of its grid; extend the grid downward")
    return warnings
