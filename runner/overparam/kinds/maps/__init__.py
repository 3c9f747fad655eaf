"""Maps beyond the paper: one row axis × depth, each cell a tuned speed-up over depth 1 (spec.py,
cells.py, kind.py, report.py)."""
