"""A seeded synthetic regression problem with a chosen size and feature conditioning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, Field, model_validator

from overparam.data.dataset import Dataset, standardized, tensor_digest
from overparam.strict import strict_with

MAX_ENTRIES = 50_000_000  # X is generated whole before anything can estimate a run's memory


class SyntheticData(BaseModel):
    """`kind: synthetic`: X = Z·diag(s) with singular spectrum spread over `condition`."""

    model_config = strict_with(rules=(f"n × d is at most {MAX_ENTRIES:,}",))
    kind: Literal["synthetic"]
    n: int = Field(256, ge=2, le=1_000_000, description="rows")
    d: int = Field(16, ge=1, le=10_000, description="features")
    condition: float = Field(100.0, ge=1.0, le=1e12, description="condition number of the feature covariance")
    noise: float = Field(0.1, ge=0.0, le=1e3, description="std of the Gaussian target noise (at most 1e3: |y|^p stays finite for every p up to 64)")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="the generator's seed (torch takes 64 bits)")
    standardize: bool = False

    @model_validator(mode="after")
    def _fits_in_memory(self) -> SyntheticData:
        if self.n * self.d > MAX_ENTRIES:
            raise ValueError(f"n × d = {self.n * self.d:,} entries, more than {MAX_ENTRIES:,} ({MAX_ENTRIES * 8 >> 20} MiB of float64); lower n or d")
        return self

    def label(self) -> str:
        return f"synthetic, condition {self.condition:g}"

    def load(self, spec_path: Path, data_dir: Path | None) -> Dataset:
        """Generated from the seed: no files."""
        return load_synthetic(self)


def load_synthetic(cfg: SyntheticData) -> Dataset:
    gen = torch.Generator().manual_seed(cfg.seed)
    Z = torch.randn(cfg.n, cfg.d, generator=gen, dtype=torch.float64)
    # Feature scales spread log-uniformly so that cov(X) has the requested condition number.
    scales = torch.logspace(0.0, -0.5 * math.log10(cfg.condition), cfg.d, dtype=torch.float64)
    X = Z * scales
    w_star = torch.randn(cfg.d, generator=gen, dtype=torch.float64) / math.sqrt(cfg.d)
    y = X @ w_star + cfg.noise * torch.randn(cfg.n, generator=gen, dtype=torch.float64)
    if cfg.standardize:
        X, y = standardized(X, y)
    details = {"rows": str(cfg.n), "features": str(cfg.d), "condition": f"{cfg.condition:g}", "seed": str(cfg.seed)}
    return Dataset(X=X, y=y, fingerprint=tensor_digest(X, y), name="synthetic", details=details)
