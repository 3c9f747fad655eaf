"""Regression claims: linear models on ℓp regression, each model's lr tuned on a grid (spec.py,
models.py: the model kinds, kind.py: verify, report.py: the report's sections)."""
