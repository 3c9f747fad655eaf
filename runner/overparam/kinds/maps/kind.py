"""How a map is verified: every row is a regression spec; all rows' runs go to the executor at
once; each cell's speed-up is read from the rows' picks; region checks; the map's report."""

from __future__ import annotations

import time
from pathlib import Path

from overparam.executors import jobs_for, train_jobs
from overparam.kind import Kind
from overparam.kinds.maps.cells import RowResult, evaluate_region, map_cells
from overparam.kinds.maps.report import MapInputs, write_map_report
from overparam.kinds.maps.spec import MapSpec
from overparam.kinds.regression.kind import dataset_for, optimum_for
from overparam.plan import Run, plan_runs
from overparam.select import select_models
from overparam.session import Options, Outcome, Progress, Session, stored_runs
from overparam.store import RunStore


def verify(spec: MapSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    rows = {level.name(spec.rows.axis): spec.row_spec(level) for level in spec.rows.levels}
    data = {name: dataset_for(session, row, spec_path, options.data_dir) for name, row in rows.items()}
    planned = {name: plan_runs(row, data[name].fingerprint) for name, row in rows.items()}
    unique = list({run.key: run for runs in planned.values() for run in runs}.values())  # rows may share runs
    data_of = {run.key: data[name] for name, runs in planned.items() for run in runs}

    def train(todo: list[Run], store: RunStore) -> None:
        by_data: dict[str, list[Run]] = {}
        for run in todo:
            by_data.setdefault(data_of[run.key].fingerprint, []).append(run)
        jobs = [job for runs in by_data.values() for job in jobs_for(runs, data_of[runs[0].key])]
        train_jobs(jobs, session.executor, store, options.device, progress.advance, options.checkpoints(jobs))

    stored, trained = stored_runs(spec.id, unique, options, progress, train)
    results = []
    for name, row in rows.items():
        optima = {p: optimum_for(session, data[name], p) for p in row.exponents}
        results.append(RowResult(name, select_models(row, planned[name], stored, optima)[0]))
    cells = map_cells(spec, results)
    checks = [evaluate_region(check, spec, cells) for check in spec.checks]
    wall_s = time.perf_counter() - start
    stored_list = [stored[r.key] for r in unique]
    inputs = MapInputs(spec, spec_path, options.profile, rows, data, cells, checks, stored_list, trained, wall_s, options.device)
    report = write_map_report(inputs, options.reports)
    return Outcome(spec, checks, report, trained, len(unique) - trained, wall_s)


KIND = Kind("map", MapSpec, verify)
