"""Damaged data of every kind is refused before anything trains: one `file:line: what is wrong`
line and exit 2, never wrong numbers or a traceback. Each case is a copy of the real shared
files with one thing broken."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MNIST_DIR, UCI_DIR, needs_mnist, needs_uci, small_spec, write_spec
from overparam.cli import app

pytestmark = [needs_uci, needs_mnist]


def uci_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "uci"
    shutil.copytree(UCI_DIR, folder)
    return folder


def edit_first_class1_row(folder: Path, change: Callable[[str], str]) -> None:
    path = folder / "batch1.dat"
    lines = path.read_text().splitlines()
    lines[0] = change(lines[0])
    path.write_text("\n".join(lines) + "\n")


def outside_link(folder: Path) -> None:
    outside = folder.parent / "elsewhere.dat"
    shutil.copy(folder / "batch2.dat", outside)
    (folder / "batch2.dat").unlink()
    os.symlink(outside, folder / "batch2.dat")


UCI_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "feature missing": (
        lambda f: edit_first_class1_row(f, lambda r: r.replace(" 17:", " x17:").replace(" x17:2789.383100", "")),
        "batch1.dat:1: 1 of the 128 features missing (index 17)",
    ),
    "row cut short": (lambda f: edit_first_class1_row(f, lambda r: r[: r.index(" 66:")]), "batch1.dat:1: 63 of the 128 features missing"),
    "index 0": (
        lambda f: edit_first_class1_row(f, lambda r: r.replace(" 1:", " 0:", 1)),
        "batch1.dat:1: '0:15596.162100' is not 'i:value'",
    ),
    "index twice": (lambda f: edit_first_class1_row(f, lambda r: r.replace(" 2:", " 1:", 1)), "batch1.dat:1: feature 1 appears twice"),
    "nan value": (
        lambda f: edit_first_class1_row(f, lambda r: r.replace(" 3:2.371604", " 3:nan")),
        "batch1.dat:1: feature 3 is nan; values must be finite",
    ),
    "inf concentration": (
        lambda f: edit_first_class1_row(f, lambda r: "1;inf" + r[r.index(" ") :]),
        "batch1.dat:1: the concentration is inf",
    ),
    "no class": (
        lambda f: edit_first_class1_row(f, lambda r: r[r.index(";") + 1 :]),
        "batch1.dat:1: starts with '10.000000', not 'CLASS;CONCENTRATION'",
    ),
    "batch twice": (
        lambda f: shutil.copy(f / "batch1.dat", f / "batch01.dat"),
        "batch 1 is there twice (batch01.dat, batch1.dat); keep one",
    ),
    "empty batch": (lambda f: (f / "batch9.dat").write_text(""), "batch9.dat: empty batch file"),
    "link out of the folder": (outside_link, "batch2.dat: links out of the data folder"),
}


def refused(tmp_path: Path, data: dict, expected: str) -> None:
    spec = write_spec(tmp_path, small_spec(data=data))
    result = CliRunner().invoke(app, ["run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--reports", str(tmp_path / "r")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.sqlite").exists() or os.path.getsize(tmp_path / "s.sqlite") < 10**5  # nothing trained


@pytest.mark.parametrize("case", UCI_CASES, ids=list(UCI_CASES))
def test_damaged_uci_data_is_refused_with_one_located_line(tmp_path: Path, case: str) -> None:
    damage, expected = UCI_CASES[case]
    folder = uci_copy(tmp_path)
    damage(folder)
    refused(tmp_path, {"kind": "uci_gas", "gas_class": 1, "path": str(folder)}, expected)


def test_a_missing_data_folder_says_it_does_not_exist(tmp_path: Path) -> None:
    refused(tmp_path, {"kind": "uci_gas", "gas_class": 1, "path": "no-such-folder"}, "no-such-folder: no such folder")


def mnist_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, folder)
    return folder


def relabel(folder: Path) -> None:
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8 + 5] = 11
    path.write_bytes(gzip.compress(bytes(raw)))


MNIST_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated gzip": (
        lambda f: (f / "t10k-images-idx3-ubyte.gz").write_bytes((f / "t10k-images-idx3-ubyte.gz").read_bytes()[:5000]),
        "t10k-images-idx3-ubyte.gz: damaged gzip archive",
    ),
    "5-byte header": (
        lambda f: (f / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0]))),
        "t10k-labels-idx1-ubyte.gz: IDX header cut short",
    ),
    "label out of range": (relabel, "t10k-labels-idx1-ubyte.gz: label 11 at position 5; MNIST labels are 0–9"),
}


@pytest.mark.parametrize("case", MNIST_CASES, ids=list(MNIST_CASES))
def test_damaged_mnist_is_refused_with_one_located_line(tmp_path: Path, case: str) -> None:
    from overparam.data.mnist import MnistData, load_mnist
    from overparam.errors import OverparamError

    damage, expected = MNIST_CASES[case]
    folder = mnist_copy(tmp_path)
    damage(folder)
    with pytest.raises(OverparamError) as error:
        load_mnist(MnistData(kind="mnist", split="test"), folder)
    assert len(error.value.lines) == 1 and expected in error.value.lines[0]
