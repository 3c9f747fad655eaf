"""Dispatch a spec's `data` entry to its source, resolving folders the documented way."""

from __future__ import annotations

from pathlib import Path

from overparam.dataset import Dataset
from overparam.synthetic import SyntheticData, load_synthetic
from overparam.uci import UciGasData, load_uci_gas, locate


def load_dataset(cfg: UciGasData | SyntheticData, spec_path: Path, data_dir: Path | None) -> Dataset:
    """`data_dir` (the --data-dir flag) wins over the spec's own `path`, which is relative to the spec."""
    if isinstance(cfg, SyntheticData):
        return load_synthetic(cfg)
    explicit = data_dir or ((spec_path.parent / cfg.path) if cfg.path else None)
    return load_uci_gas(cfg, locate(explicit))
