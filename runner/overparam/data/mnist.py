"""MNIST in IDX format: locate or download the files, read images and labels.

Where the files come from, in order: `data.path` in the spec (relative to the spec), the
`OVERPARAM_MNIST` environment variable, the user cache dir (downloaded
there when absent, each archive checked against its published MD5).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Literal

import numpy
import torch
from pydantic import BaseModel, Field

from overparam.atomic import read_regular
from overparam.data.dataset import Source, user_cache
from overparam.errors import OverparamError
from overparam.strict import STRICT

MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FILES = {  # name -> MD5 of the published .gz (the torchvision mirror's checksums)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PREFIX = {"train": "train", "test": "t10k"}
MAX_IDX_BYTES = 64 << 20  # the training images, unpacked, are 47 MB


class MnistData(BaseModel):
    """`kind: mnist`: the MNIST training split (60k) or test split (10k), pixels scaled to [−0.5, 0.5]."""

    model_config = STRICT
    kind: Literal["mnist"]
    split: Literal["train", "test"] = Field("train", description="which split to train on")
    path: str | None = Field(None, description="folder with the IDX files (relative to the spec)")


def cache_dir() -> Path:
    return user_cache("mnist")


def split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    """(images, labels) of `split` in `folder`, gzipped or not, or None."""
    found = []
    for part in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        stem = f"{PREFIX[split]}-{part}"
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def locate(explicit: Path | None, split: str) -> tuple[Path, Path]:
    source = Source(
        f"MNIST {split} split",
        f"MNIST {split} split ({PREFIX[split]}-*-ubyte[.gz])",
        "OVERPARAM_MNIST",
        cache_dir(),
        "data.path in the spec or OVERPARAM_MNIST=DIR",
    )

    def fetch(cache: Path) -> None:
        for name in FILES:
            if name.startswith(PREFIX[split]):
                download(name, cache)

    files = split_files(source.folder(explicit, lambda folder: split_files(folder, split) is not None, fetch), split)
    assert files is not None  # the folder holds them: Source.folder checked
    return files


def download(name: str, dest: Path, mirror: str | None = None) -> None:
    """Fetch one archive, check its MD5, and move it into place whole."""
    dest.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen((mirror or MIRROR) + name, timeout=30) as response:
        blob = response.read()
    if hashlib.md5(blob).hexdigest() != FILES[name]:
        raise OSError(f"checksum mismatch for {name}")
    with tempfile.NamedTemporaryFile(dir=dest, delete=False) as part:
        part.write(blob)
    os.replace(part.name, dest / name)


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor of its stated shape; a damaged file is
    one located OverparamError (gzip's EOFError would read as a user abort to click)."""
    raw = read_regular(path, "MNIST IDX", MAX_IDX_BYTES)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as archive:
                raw = archive.read(MAX_IDX_BYTES + 1)  # bounded: a few kB of gzip can unpack to gigabytes
        except (EOFError, OSError, zlib.error) as err:
            raise OverparamError(f"{path}: damaged gzip archive ({err or type(err).__name__}); download it again") from None
        if len(raw) > MAX_IDX_BYTES:
            raise OverparamError(f"{path}: unpacks to more than {MAX_IDX_BYTES:,} bytes, more than any MNIST file; is it the right file?")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise OverparamError(f"{path}: not an IDX file of unsigned bytes (its header is damaged or it is another file)")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise OverparamError(f"{path}: IDX header cut short ({len(raw)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    expected = 1
    for size in shape:
        expected *= size
    if len(body) != expected:
        raise OverparamError(f"{path}: IDX header says {expected} values, the file holds {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


def load_mnist(cfg: MnistData, folder: Path | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Images (n, 1, 28, 28) float32 in [−0.5, 0.5], labels (n,) int64, and a content fingerprint."""
    images_path, labels_path = locate(folder, cfg.split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise OverparamError(f"{images_path}: images of shape {tuple(images.shape[1:])}, MNIST's are 28 × 28")
    if labels.dim() != 1:
        raise OverparamError(f"{labels_path}: labels of shape {tuple(labels.shape)}, expected one label per image")
    if images.shape[0] != labels.shape[0]:
        raise OverparamError(f"{images_path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if len(labels) and int(labels.max()) > 9:
        first = int((labels > 9).nonzero()[0, 0])
        raise OverparamError(f"{labels_path}: label {int(labels[first])} at position {first}; MNIST labels are 0–9")
    digest = hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest()[:16]
    return PIXEL[images.to(torch.int64)].unsqueeze(1), labels.to(torch.int64), digest


def _pixel_values() -> torch.Tensor:
    """v / 255 − 0.5 in float32 for each byte v, each an IEEE division then subtraction (numpy
    scalars): a table of 256 values, so no vectorized division (which may multiply by a rounded
    reciprocal on some code paths) decides a pixel's bits."""
    return torch.tensor([numpy.float32(v) / numpy.float32(255.0) - numpy.float32(0.5) for v in range(256)], dtype=torch.float32)


PIXEL = _pixel_values()
