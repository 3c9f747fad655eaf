"""Theory claims: numeric probes of the paper's theorems, checked by value bounds (spec.py,
probes.py, values.py, kind.py, report.py)."""
