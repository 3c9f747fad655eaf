"""What every data source returns: a design matrix, a target, and where they came from."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass(frozen=True)
class Dataset:
    """A regression problem held in float64 on the CPU; the engine casts and moves it."""

    X: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    fingerprint: str  # hash of the content: part of every run's cache key
    name: str
    details: dict[str, str] = field(default_factory=dict)  # shown in the report's provenance

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.X.shape[0]), int(self.X.shape[1])


def standardized(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-score every feature and the target (population std; constant columns are left centred)."""
    std = X.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    Xs = (X - X.mean(dim=0)) / std
    ys = (y - y.mean()) / y.std(unbiased=False)
    return Xs, ys


def tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().to(torch.float64).numpy().tobytes())
    return h.hexdigest()[:16]


def user_cache(name: str) -> Path:
    """Where downloaded data `name` lives: $XDG_CACHE_HOME/overparam/name (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "overparam" / name
