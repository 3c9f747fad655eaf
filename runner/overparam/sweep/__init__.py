"""lr sweeps of linear nets on ℓp regression, the machinery the regression and map kinds share:
the spec (spec, models), its runs (config, plan), training them (train), the picks (select, refine)
and the data, optima and one-ulp twins they read (runs). A sweep knows no kind: kinds build on it."""
