"""A map's cells from its rows' tuned results, and its region checks evaluated over them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from overparam.checks import Bounds, CheckResult
from overparam.kinds.maps.spec import BASELINE_DEPTH, MapSpec, Range, RegionCheck, depth_name
from overparam.results import Results, median


@dataclass(frozen=True)
class RowResult:
    name: str  # the level's name in the report
    results: Results  # depth 1 and every depth of the map, each at its tuned lr


@dataclass(frozen=True)
class Cell:
    """Speed-up of depth `depth` over depth 1 on one row, per seed (same seed, each at its own lr)."""

    row: str
    depth: int
    speedups: list[float] | None  # None when a model of the cell has no usable lr
    lr: float | None
    baseline_lr: float | None
    why: str = ""

    @property
    def median(self) -> float | None:
        return None if self.speedups is None else median(self.speedups)


def map_cells(spec: MapSpec, rows: list[RowResult]) -> dict[tuple[str, int], Cell]:
    cells = {}
    for row in rows:
        base = row.results.at(depth_name(BASELINE_DEPTH))
        for depth in sorted(set(spec.depths)):
            deep = row.results.at(depth_name(depth))
            unusable = [r for r in (base, deep) if r.lr is None]
            if unusable:
                why = "; ".join(f"{r.name}: {r.why_none}" for r in unusable)
                cells[(row.name, depth)] = Cell(row.name, depth, None, deep.lr, base.lr, why)
                continue
            floor = converged_gap(base.optimum)
            ratios = (base.gaps[:, -1].clamp_min(floor) / deep.gaps[:, -1].clamp_min(floor)).tolist()
            cells[(row.name, depth)] = Cell(row.name, depth, ratios, deep.lr, base.lr)
    return cells


def converged_gap(optimum: float) -> float:
    """L − L* below this is rounding (the loss is a mean of n terms of size ~L*): such a run has
    converged, and two converged runs are equally fast (speed-up 1), not infinitely apart."""
    return 1e-12 * max(1.0, abs(optimum))


def _read(speedups: list[float], seeds: str) -> list[float]:
    """Every seed's speed-up, or their median."""
    return speedups if seeds == "all" else [median(speedups)]


def evaluate_region(check: RegionCheck, spec: MapSpec, cells: dict[tuple[str, int], Cell]) -> CheckResult:
    return replace(_region_result(check, spec, cells), role=check.role, decides=check.decides)


def _region_result(check: RegionCheck, spec: MapSpec, cells: dict[tuple[str, int], Cell]) -> CheckResult:
    covered = [cells[key] for key in spec.cells_in(check)]
    statement = _statement(check, spec, len(covered))
    unusable = [c for c in covered if c.speedups is None]
    if unusable:
        c = unusable[0]
        return CheckResult(False, statement, f"no usable runs in {len(unusable)} cell(s), e.g. {c.row}, depth {c.depth}: {c.why}")
    values = {(c.row, c.depth): _read(c.speedups or [], check.seeds) for c in covered}
    failing = [(key, v) for key, vs in values.items() for v in vs if not _holds(check, v)]
    every = [v for vs in values.values() for v in vs]
    span = f"speed-ups {min(every):.3g}–{max(every):.3g} over {len(covered)} cells" + (" (medians)" if check.seeds == "median" else "")
    margin = min(Bounds(check.above, check.below, strict=True).margin(v) for v in every)
    if not failing:
        return CheckResult(True, statement, span, tuple(every), margin, key=span)
    (row, depth), worst = failing[0]
    evidence = f"{len({k for k, _ in failing})} cell(s) break it, e.g. {row}, depth {depth}: {worst:.3g}; {span}"
    return CheckResult(False, statement, evidence, tuple(every), margin, key=span)


def _holds(check: RegionCheck, value: float) -> bool:
    return Bounds(check.above, check.below, strict=True).holds(value)


def _statement(check: RegionCheck, spec: MapSpec, count: int) -> str:
    bounds = Bounds(check.above, check.below, strict=True).text()
    where = ", ".join(f"{axis} {_range_text(r)}" for axis, r in check.where.items())
    who = "every seed" if check.seeds == "all" else "the median over seeds"
    return f"speed-up over depth 1 {bounds} in all {count} cells" + (f" with {where}" if where else "") + f" ({who})"


def _range_text(r: Range) -> str:
    if r.in_ is not None:
        return "in {" + ", ".join(map(str, r.in_)) + "}"
    lo, hi = r.at_least, r.at_most
    if lo is not None and hi is not None:
        return f"{lo:g}–{hi:g}"
    return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}"
