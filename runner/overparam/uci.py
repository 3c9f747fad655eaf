"""The UCI gas-sensor drift data (dataset 270): locate or download the batch files, read one gas.

Where the files come from, in order: `data.path` in the spec or `--data-dir`, the
`OVERPARAM_DATA` environment variable, the user cache dir (downloaded there when absent).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from overparam.dataset import Dataset, standardized, user_cache
from overparam.errors import OverparamError

UCI_URL = "https://archive.ics.uci.edu/static/public/270/gas+sensor+array+drift+dataset+at+different+concentrations.zip"
UCI_SHA256 = "98fe3a30981a222dd4518fbcc3dddd45d5c0ce9b03ef6dc6fe5cf7a04cfbff5e"
N_FEATURES = 128
BATCH_FILE = re.compile(r"^batch(\d+)\.dat$")
CLASS_NOTE = (
    "class 1 is the paper's 'Ethanol' task, but the dataset's own per-batch composition "
    "table matches class 1 to Acetone (see the data README); we reproduce the paper with class 1"
)


class UciGasData(BaseModel):
    """`kind: uci_gas`: one gas class of the UCI drift data, target = concentration (ppmv)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["uci_gas"]
    gas_class: int = Field(1, ge=1, le=6, description="1..6; the paper's 'Ethanol' task is 1")
    standardize: bool = Field(True, description="z-score every feature and the target")
    path: str | None = Field(None, description="folder with batch*.dat (relative to the spec)")


def cache_dir() -> Path:
    return user_cache("uci-gas-drift")


def batch_files(folder: Path) -> list[Path]:
    """The batch*.dat files in `folder`, in batch order."""
    found = [p for p in folder.glob("batch*.dat") if BATCH_FILE.match(p.name)]
    return sorted(found, key=lambda p: int(BATCH_FILE.match(p.name).group(1)))  # type: ignore[union-attr]


def locate(explicit: Path | None, *, download: bool = True) -> Path:
    """The folder to read, following the documented order; downloads into the cache if needed."""
    for origin, folder in (("data path", explicit), ("OVERPARAM_DATA", _env_dir())):
        if folder is None:
            continue
        if not batch_files(folder):
            raise OverparamError(f"{origin} {folder}: no batch*.dat files there; point it at the UCI batch files")
        return folder
    cached = cache_dir()
    if batch_files(cached):
        return cached
    if download:
        try:
            fetch_official_zip(cached)
        except OSError as err:
            raise OverparamError(
                f"UCI gas data not found and the download failed ({err}); supply it with "
                "data.path in the spec, --data-dir DIR, or OVERPARAM_DATA=DIR"
            ) from err
        return cached
    raise OverparamError("UCI gas data not found; supply it with data.path, --data-dir DIR, or OVERPARAM_DATA=DIR")


def _env_dir() -> Path | None:
    value = os.environ.get("OVERPARAM_DATA")
    return Path(value) if value else None


def fetch_official_zip(dest: Path, url: str | None = None) -> None:
    """Download the official archive, check its SHA-256, extract the batch files into `dest`."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    url = url or UCI_URL
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        archive = Path(tmp) / "uci.zip"
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=30) as response, archive.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, transient=True) as bar:
                task = bar.add_task("downloading UCI gas data", total=total)
                while chunk := response.read(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.advance(task, len(chunk))
        if digest.hexdigest() != UCI_SHA256:
            raise OSError(f"checksum mismatch: got sha256 {digest.hexdigest()[:12]}…, expected {UCI_SHA256[:12]}…")
        _extract_batches(archive, Path(tmp))
        for part in batch_files(Path(tmp)):
            os.replace(part, dest / part.name)  # whole files only: a crash leaves no half file


def _extract_batches(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = Path(info.filename).name
            if BATCH_FILE.match(name):
                with zf.open(info) as src, (into / name).open("wb") as out:
                    shutil.copyfileobj(src, out)


def read_rows(files: list[Path], gas_class: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Rows of one class: features (n, 128), concentrations (n,), and rows found per file."""
    features: list[list[float]] = []
    target: list[float] = []
    per_file: dict[str, int] = {}
    prefix = f"{gas_class};"
    for path in files:
        count = 0
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.startswith(prefix):
                continue
            try:
                label, *pairs = line.split()
                row = [0.0] * N_FEATURES
                for pair in pairs:
                    index, value = pair.split(":")
                    row[int(index) - 1] = float(value)
                target.append(float(label.split(";")[1]))
            except (ValueError, IndexError) as err:
                raise OverparamError(f"{path}:{lineno}: not a UCI row 'CLASS;CONC i:v ...' ({err})") from err
            features.append(row)
            count += 1
        per_file[path.name] = count
    return torch.tensor(features, dtype=torch.float64), torch.tensor(target, dtype=torch.float64), per_file


def load_uci_gas(cfg: UciGasData, folder: Path) -> Dataset:
    files = batch_files(folder)
    X, y, per_file = read_rows(files, cfg.gas_class)
    if X.shape[0] == 0:
        raise OverparamError(f"{folder}: no rows of gas class {cfg.gas_class} in {len(files)} batch files")
    digest = hashlib.sha256(cfg.model_dump_json(exclude={"path"}).encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    if cfg.standardize:
        X, y = standardized(X, y)
    batches = ", ".join(p.stem.removeprefix("batch") for p in files)
    details = {
        "source": str(folder),
        "batches": f"{len(files)} of 10 ({batches})",
        "rows": f"{X.shape[0]} of class {cfg.gas_class} (the full 10-batch set has 2565 of class 1)",
        "preprocessing": "z-scored features and target" if cfg.standardize else "raw",
        "class label": CLASS_NOTE,
    }
    return Dataset(X=X, y=y, fingerprint=digest.hexdigest()[:16], name=f"UCI gas class {cfg.gas_class}", details=details)
