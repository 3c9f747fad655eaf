"""A seeded synthetic regression problem with a chosen size and feature conditioning."""

from __future__ import annotations

import decimal
import math
import operator
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
    """X = Z·diag(s), y = X·w* + noise·ε. Every bit is the project's: Z, w* and ε come from torch's
    seeded generator, the scales s are correctly rounded (decimal arithmetic, not libm's pow), each
    column of X is Z's times one scale (one IEEE product per entry), and each target is the correctly
    rounded sum (math.fsum) of its row's exact products and its noise, not a BLAS product whose
    order of summation depends on the CPU's instruction set."""
    gen = torch.Generator().manual_seed(cfg.seed)
    Z = torch.randn(cfg.n, cfg.d, generator=gen, dtype=torch.float64)
    X = Z * torch.tensor(spectrum(cfg.condition, cfg.d), dtype=torch.float64)
    root_d = math.sqrt(cfg.d)  # IEEE square root: correctly rounded
    w_star = [value / root_d for value in torch.randn(cfg.d, generator=gen, dtype=torch.float64).tolist()]
    noise = torch.randn(cfg.n, generator=gen, dtype=torch.float64).tolist()
    y = torch.tensor([exact_dot(row, w_star, cfg.noise * e) for row, e in zip(X.tolist(), noise)], dtype=torch.float64)
    if cfg.standardize:
        X, y = standardized(X, y)
    details = {"rows": str(cfg.n), "features": str(cfg.d), "condition": f"{cfg.condition:g}", "seed": str(cfg.seed)}
    return Dataset(X=X, y=y, fingerprint=tensor_digest(X, y), name="synthetic", details=details)


def spectrum(condition: float, d: int) -> list[float]:
    """Feature scales spread log-uniformly from 1 down to 1/√condition, so that cov(X) has the
    requested condition number: 10^(−log10(condition)·i / (2(d − 1))), each correctly rounded."""
    with decimal.localcontext(decimal.Context(prec=40)):
        decades = decimal.Decimal(condition).log10()
        return [float(decimal.Decimal(10) ** (-decades * i / (2 * (d - 1)))) if d > 1 else 1.0 for i in range(d)]


def exact_dot(row: list[float], w: list[float], plus: float = 0.0) -> float:
    """Σ row_j·w_j + plus, correctly rounded (math.fsum of the rounded products): the same bits on every CPU."""
    return math.fsum([*map(operator.mul, row, w), plus])
