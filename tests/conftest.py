"""Shared fixtures: the real data beside the project, and small specs written on the fly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import overparam  # noqa: F401 - first: it puts MKL in reproducible mode before anything multiplies
from overparam.data import load_dataset
from overparam.data.dataset import Dataset
from overparam.engine.kernel import FusedKernel, compiler, fused_kernel
from overparam.specload import load_spec
from overparam.store import RunStore
from overparam.sweep.plan import plan_runs

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# The real data, found as the CLI finds it: OVERPARAM_DATA / OVERPARAM_MNIST, else ../shared beside the project.
UCI_DIR = Path(os.environ.get("OVERPARAM_DATA") or SHARED / "data" / "uci-gas-drift").resolve()
MNIST_DIR = Path(os.environ.get("OVERPARAM_MNIST") or SHARED / "data" / "mnist").resolve()


def _not_there(what: str, folder: Path, variable: str) -> str:
    return f"the {what} data is not at {folder}: set {variable} to its folder (these tests read the real files)"


needs_uci = pytest.mark.skipif(not UCI_DIR.is_dir(), reason=_not_there("UCI gas", UCI_DIR, "OVERPARAM_DATA"))
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=_not_there("MNIST", MNIST_DIR, "OVERPARAM_MNIST"))

# One BLAS/OpenMP thread unless a test is about thread counts (it sets its own): on a loaded
# 2-core machine, tests that each spin several threads slow down manyfold.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def uci_dir() -> Path:
    if not UCI_DIR.is_dir():
        pytest.skip(_not_there("UCI gas", UCI_DIR, "OVERPARAM_DATA"))
    return UCI_DIR


@pytest.fixture
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        pytest.skip(_not_there("MNIST", MNIST_DIR, "OVERPARAM_MNIST"))
    return MNIST_DIR


@pytest.fixture
def fused() -> FusedKernel:
    """The fused C kernel; skipped where there is no C compiler, failed where one is but the build is not."""
    if shutil.which(compiler()) is None:
        pytest.skip("no C compiler on this machine: the engine uses torch ops only")
    built = fused_kernel()
    assert built is not None, "a C compiler is here but the fused kernel did not build"
    return built


@pytest.fixture(params=["torch ops", "C kernels"])
def kernel(request: pytest.FixtureRequest) -> FusedKernel | None:
    """The engine's two ways to compute: both must give the same maths."""
    return None if request.param == "torch ops" else request.getfixturevalue("fused")


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


EVERY_KIND_MODELS = [
    {"name": "depth-1", "kind": "linear_net", "depth": 1},
    {"name": "depth-2", "kind": "linear_net", "depth": 2, "width": 10},
    {"name": "depth-3", "kind": "linear_net", "depth": 3, "width": 100},
    {"name": "depth-2 adam", "kind": "linear_net", "depth": 2, "width": 10, "optimizer": {"kind": "adam"}},
    {"name": "depth-2 adagrad", "kind": "linear_net", "depth": 2, "width": 10, "optimizer": {"kind": "adagrad"}},
    {"name": "depth-3 adadelta", "kind": "linear_net", "depth": 3, "width": 10, "optimizer": {"kind": "adadelta"}},
    {"name": "emulation", "kind": "end_to_end", "depth": 3},
    {"name": "warm-up form", "kind": "warmup_form"},
]


def planned_runs_of_every_kind(tmp_path: Path, p: float, data: dict) -> tuple[list, Dataset]:
    """Runs of every model kind the engine trains (GD nets at three depths, Adam, the end-to-end
    rule, the warm-up form), 5 lrs × 2 seeds each, 60 steps, W_e recorded."""
    models = EVERY_KIND_MODELS
    raw = small_spec(
        data=data,
        loss={"kind": "lp", "p": p},
        models=models,
        train={"steps": 60, "record_every": 20, "init": {"kind": "normal", "std": 0.01}, "record_end_to_end": True},
        tune={"lr": [1e-4, 2e-4, 3e-4, 4e-4]},  # 8 kinds × 8 runs: one program of MAX_SHARED_RUNS
        seeds=[0, 1],
        checks=[{"kind": "bound", "metric": "final_loss", "model": "depth-1", "lo": 0.0}],
    )
    spec = load_spec(write_spec(tmp_path, raw))
    dataset = load_dataset(spec.data, tmp_path / "tiny.yaml", UCI_DIR if data["kind"] == "uci_gas" else None)
    return plan_runs(spec, dataset.fingerprint), dataset


@pytest.fixture(autouse=True)
def _no_user_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the user's cache or environment by accident."""
    monkeypatch.delenv("OVERPARAM_DATA", raising=False)
    monkeypatch.delenv("OVERPARAM_MNIST", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    os.environ.setdefault("COLUMNS", "200")
