"""What every data source returns: a design matrix, a target, and where they came from."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from overparam.errors import OverparamError


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


def one_ulp_up(dataset: Dataset, dtype: torch.dtype) -> Dataset:
    """The rounding twin of `dataset`: X·(1 + ε), ε = `dtype`'s machine epsilon (2⁻⁵² in float64),
    which moves every nonzero entry up by one or two ulps of the dtype the runs train in."""
    X = dataset.X * (1.0 + torch.finfo(dtype).eps)
    name = f"{dataset.name}, X·(1 + {torch.finfo(dtype).eps:.3g})"
    return Dataset(X, dataset.y, tensor_digest(X, dataset.y), name, dataset.details)


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


@dataclass(frozen=True)
class Source:
    """Where a dataset's files are looked for, in the documented order: an explicit folder (the
    spec's `data.path`, or --data-dir), the environment variable `variable`, the user cache, and
    a download into the cache. Each way it can fail is one line that says how to supply the data."""

    dataset: str  # "UCI gas data"
    files: str  # what a folder must hold, e.g. "batch*.dat files"
    variable: str  # OVERPARAM_DATA
    cache: Path
    supply: str  # the ways to supply it, for the messages

    def folder(self, explicit: Path | None, holds: Callable[[Path], bool], fetch: Callable[[Path], object]) -> Path:
        """The folder to read; `holds(folder)` says whether it has the files, `fetch(cache)` fills
        the cache (raising OSError when it cannot)."""
        env = os.environ.get(self.variable)
        for origin, folder in (("data path", explicit), (self.variable, Path(env) if env else None)):
            if folder is None:
                continue
            if not folder.is_dir():
                raise OverparamError(f"{origin} {folder}: no such folder; point it at the folder of the {self.files}")
            if not holds(folder):
                raise OverparamError(f"{origin} {folder}: no {self.files} there; point it at the folder of the {self.files}")
            return folder
        if holds(self.cache):
            return self.cache
        try:
            fetch(self.cache)
        except OSError as err:
            raise OverparamError(f"{self.dataset} not found and the download failed ({err}); supply it with {self.supply}") from err
        return self.cache
