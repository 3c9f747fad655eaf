"""How a map is verified: every row is a regression spec; all rows' runs go to the executor at
once; each cell's speed-up is read from the rows' picks; region checks; the map's report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from overparam.checks import CheckResult, Stability
from overparam.data.dataset import one_ulp_up
from overparam.evidence import chaos, fragility, step_below
from overparam.kind import Kind
from overparam.kinds.maps.cells import RowResult, evaluate_region, map_cells
from overparam.kinds.maps.report import MapInputs, data_facts, write_map_report
from overparam.kinds.maps.spec import BASELINE_DEPTH, MapSpec, RegionCheck, depth_name
from overparam.results import Results
from overparam.session import Options, Outcome, Progress, RunFetcher, Session
from overparam.sweep.plan import plan_runs
from overparam.sweep.refine import Tuning, edge_warnings, tune
from overparam.sweep.runs import dataset_for, optimum_for, optimum_point_for, twin_results
from overparam.sweep.train import DTYPES, train_group


def verify(spec: MapSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    rows = {level.name(spec.rows.axis): spec.row_spec(level) for level in spec.rows.levels}
    data = {name: dataset_for(session, row, spec_path, options.data_dir) for name, row in rows.items()}
    planned = {name: plan_runs(row, data[name].fingerprint) for name, row in rows.items()}
    unique = list({run.key: run for runs in planned.values() for run in runs}.values())  # rows may share runs
    data_of = {run.key: data[name] for name, runs in planned.items() for run in runs}
    fetcher = RunFetcher(options, session, progress, train_group)
    stored = fetcher.fetch(spec.id, unique, lambda run: data_of[run.key])
    tunings = {
        name: Tuning(row, data[name], list(planned[name]), {p: optimum_for(session, data[name], p) for p in row.exponents})
        for name, row in rows.items()
    }
    tune(list(tunings.values()), fetcher, f"{spec.id} (refining the lrs)", stored)
    unique = list({run.key: run for tuning in tunings.values() for run in tuning.runs}.values())
    results = [RowResult(name, tuning.results) for name, tuning in tunings.items() if tuning.results is not None]
    twins, twin_runs = [], []
    for name, tuning in tunings.items():
        assert tuning.results is not None
        picked = sorted((model, r.lr) for model, r in tuning.results.picked.items() if r.lr is not None)
        twin_data = one_ulp_up(data[name], DTYPES[tuning.spec.train.dtype])
        row_twins, runs = twin_results(tuning.spec, tuning.results, picked, twin_data, fetcher, tuning.optima)
        twins.append(RowResult(name, row_twins))
        twin_runs += runs
    cells = map_cells(spec, results)
    checks = [region_evidence(check, spec, results, tunings, twins) for check in spec.checks]
    wall_s = time.perf_counter() - start
    stored_list = [stored[r.key] for r in unique] + twin_runs
    facts = {name: data_facts(data[name], row.loss.p, optimum_point_for(session, data[name], row.loss.p)) for name, row in rows.items()}
    inputs = MapInputs(
        spec, spec_path, options.profile, rows, data, cells, checks, stored_list, fetcher.trained, wall_s, options.device, facts
    )
    report = write_map_report(inputs, options.reports)
    edges = sum(bool(edge_warnings(t.spec, t.results, t.sweeps)) for t in tunings.values() if t.results and t.sweeps)
    warnings = (
        [f"{edges} of {len(tunings)} rows pick an lr at their grid's edge (↑ / ↓ in the report); extend those grids"] if edges else []
    )
    return Outcome(spec, checks, report, fetcher.trained, len(stored_list) - fetcher.trained, wall_s, warnings)


def region_evidence(
    check: RegionCheck, spec: MapSpec, rows: list[RowResult], tunings: dict[str, Tuning], twins: list[RowResult]
) -> CheckResult:
    """The region check with its stability: fragile when moving every deep net, depth 1, or both,
    one lr step lower in every cell flips it; chaotic under the one-ulp twins of every pick."""
    result = evaluate_region(check, spec, map_cells(spec, rows))
    deep = {depth_name(n) for n in spec.depths}
    moves = {"every deep net one step lower": deep, "depth 1 one step lower": {depth_name(BASELINE_DEPTH)}}
    moves["both"] = set().union(*moves.values())
    flips = []
    for label, names in moves.items():
        moved = [RowResult(row.name, lowered(row.results, tunings[row.name], names)) for row in rows]
        outcome = evaluate_region(check, spec, map_cells(spec, moved))
        if outcome.passed != result.passed:
            flips.append((label, outcome))
    fragile, fragile_text = fragility(result, flips, len(moves), "in every cell at once; where no stable lr is below, the pick stays")
    chaotic, chaotic_text = chaos(result, evaluate_region(check, spec, map_cells(spec, twins)))
    return replace(result, stability=Stability(fragile, fragile_text, chaotic, chaotic_text))


def lowered(results: Results, tuning: Tuning, names: set[str]) -> Results:
    """`results` with each model in `names` at the next stable lr below its pick (where there is one)."""
    assert tuning.sweeps is not None
    picked = dict(results.picked)
    for name in names:
        below = step_below(tuning.sweeps[name], picked[name].lr)
        if below is not None:
            picked[name] = results.by_lr[name][below]
    return Results(picked, results.by_lr)


KIND = Kind("map", MapSpec, verify)
