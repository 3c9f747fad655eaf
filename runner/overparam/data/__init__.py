"""The regression kinds' data sources: the union a spec's `data:` takes, and loading it.

Adding a source is a module with its config (a `kind`, and `load(spec_path, data_dir)` giving a
Dataset) and one member of `DataSpec` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from overparam.data.dataset import Dataset
from overparam.data.synthetic import SyntheticData
from overparam.data.uci import UciGasData

DataSpec = Annotated[UciGasData | SyntheticData, Field(discriminator="kind")]


def load_dataset(cfg: UciGasData | SyntheticData, spec_path: Path, data_dir: Path | None) -> Dataset:
    """`data_dir` (the --data-dir flag) wins over a spec's own `path`, which is relative to the spec."""
    return cfg.load(spec_path, data_dir)
