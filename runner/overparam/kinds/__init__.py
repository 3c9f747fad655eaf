"""The experiment kinds, one subpackage each: its spec, its runs or probes, its report, and a
`kind.py` with `KIND` (name, spec, verify). The registry that lists them is `overparam.registry`."""
