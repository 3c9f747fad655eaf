"""Shared fixtures: the real data beside the project, and small specs written on the fly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

import overparam  # noqa: F401 - first: it puts MKL in reproducible mode before anything multiplies
from overparam.engine.kernel import FusedKernel, compiler, fused_kernel
from overparam.store import RunStore

SHARED = Path(__file__).resolve().parents[2] / "shared"
UCI_DIR = SHARED / "data" / "uci-gas-drift"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def uci_dir() -> Path:
    if not UCI_DIR.is_dir():
        pytest.fail(f"the shared UCI data is missing at {UCI_DIR}; the tests read the real files")
    return UCI_DIR


@pytest.fixture
def fused() -> FusedKernel:
    """The fused C kernel; skipped where there is no C compiler, failed where one is but the build is not."""
    if shutil.which(compiler()) is None:
        pytest.skip("no C compiler on this machine: the engine uses torch ops only")
    built = fused_kernel()
    assert built is not None, "a C compiler is here but the fused kernel did not build"
    return built


def small_spec(**overrides: object) -> dict:
    """A valid spec on synthetic data that trains in well under a second."""
    spec = {
        "id": "tiny",
        "title": "Tiny synthetic check",
        "claim": "A claim for tests.",
        "paper": {"section": "test"},
        "verdict": {"status": "reproduced"},
        "data": {"kind": "synthetic", "n": 64, "d": 6, "condition": 10.0, "seed": 0},
        "loss": {"kind": "lp", "p": 4},
        "train": {"steps": 400, "record_every": 20, "init": {"kind": "normal", "std": 0.1}},
        "models": [
            {"name": "shallow", "kind": "linear_net", "depth": 1},
            {"name": "deep", "kind": "linear_net", "depth": 2, "width": 5},
        ],
        "tune": {"lr": [0.01, 0.03]},
        "seeds": [0, 1],
        "checks": [{"kind": "bound", "metric": "final_gap", "model": "shallow", "hi": 100.0}],
    }
    spec.update(overrides)
    return spec


def all_losses(store: Path) -> dict[str, list[float]]:
    """Every run in a run store: key -> its recorded losses."""
    db = RunStore(store)
    keys = [k for (k,) in db._db.execute("SELECT key FROM runs")]
    runs = db.get(keys)
    db.close()
    return {k: r.losses.tolist() for k, r in runs.items()}


def write_spec(folder: Path, spec: dict, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_user_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the user's cache or environment by accident."""
    monkeypatch.delenv("OVERPARAM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    os.environ.setdefault("COLUMNS", "200")
