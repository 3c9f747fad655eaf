"""The data readers, on the real shared files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from overparam.data import uci
from overparam.data.synthetic import SyntheticData, load_synthetic
from overparam.data.uci import UciGasData, batch_files, load_uci_gas, locate, read_rows
from overparam.errors import OverparamError

# From ../shared/data/uci-gas-drift/README.md.
CLASS1_ROWS = {
    "batch1.dat": 90,
    "batch2.dat": 164,
    "batch3.dat": 365,
    "batch4.dat": 64,
    "batch5.dat": 28,
    "batch6.dat": 514,
    "batch8.dat": 30,
    "batch9.dat": 61,
}


def test_reader_finds_the_documented_class1_rows_per_batch(uci_dir: Path) -> None:
    X, y, per_file = read_rows(batch_files(uci_dir), gas_class=1)
    assert per_file == CLASS1_ROWS
    assert X.shape == (1316, 128) and y.shape == (1316,)
    assert torch.isfinite(X).all()
    assert (y > 0).all()  # concentrations in ppmv


def test_first_row_is_parsed_exactly(uci_dir: Path) -> None:
    X, y, _ = read_rows([uci_dir / "batch1.dat"], gas_class=1)
    assert y[0] == 10.0
    assert X[0, 0] == 15596.1621 and X[0, 1] == 1.868245 and X[0, 8] == 15326.6914


def test_standardized_dataset_has_zero_mean_unit_std_and_a_stable_fingerprint(uci_dir: Path) -> None:
    cfg = UciGasData(kind="uci_gas", gas_class=1)
    a, b = load_uci_gas(cfg, uci_dir), load_uci_gas(cfg, uci_dir)
    assert a.fingerprint == b.fingerprint
    assert a.X.mean(dim=0).abs().max() < 1e-10
    assert (a.X.std(dim=0, unbiased=False) - 1).abs().max() < 1e-10
    assert abs(float(a.y.std(unbiased=False)) - 1) < 1e-12
    assert "8 of 10" in a.details["batches"] and "Acetone" in a.details["class label"]


def test_fingerprint_changes_with_the_selection(uci_dir: Path) -> None:
    one = load_uci_gas(UciGasData(kind="uci_gas", gas_class=1), uci_dir)
    two = load_uci_gas(UciGasData(kind="uci_gas", gas_class=2), uci_dir)
    raw = load_uci_gas(UciGasData(kind="uci_gas", gas_class=1, standardize=False), uci_dir)
    assert len({one.fingerprint, two.fingerprint, raw.fingerprint}) == 3


def test_a_batch_can_be_left_out_and_the_full_datas_fingerprint_stays(uci_dir: Path) -> None:
    """exclude_batches drops whole batch files; without it the fingerprint is the one every run in
    the shipped reports was keyed on (f0b97f849cbb842e, reports/l4_depth.md)."""
    full = load_uci_gas(UciGasData(kind="uci_gas", gas_class=1), uci_dir)
    without = load_uci_gas(UciGasData(kind="uci_gas", gas_class=1, exclude_batches=[1]), uci_dir)
    assert full.fingerprint == "f0b97f849cbb842e"
    assert without.X.shape == (1316 - CLASS1_ROWS["batch1.dat"], 128) and without.fingerprint != full.fingerprint
    assert without.name.endswith("without batch 1") and "left out: 1" in without.details["batches"]
    with pytest.raises(OverparamError, match="exclude_batches names batch 7, which is not here"):
        load_uci_gas(UciGasData(kind="uci_gas", gas_class=1, exclude_batches=[7]), uci_dir)


def test_environment_variable_is_used_when_no_path_is_given(uci_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERPARAM_DATA", str(uci_dir))
    assert locate(None) == uci_dir


def test_explicit_path_without_batch_files_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OverparamError, match="no UCI batch.*dat files there"):
        locate(tmp_path)


def test_missing_data_offline_names_the_three_ways_to_supply_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uci, "UCI_URL", "http://127.0.0.1:9/unreachable.zip")
    with pytest.raises(OverparamError) as caught:
        locate(None)
    (line,) = caught.value.lines
    assert "download failed" in line
    assert "data.path" in line and "--data-dir" in line and "OVERPARAM_DATA" in line


def test_download_refuses_an_archive_with_the_wrong_checksum(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not the UCI archive")
    with pytest.raises(OSError, match="checksum mismatch"):
        uci.fetch_official_zip(tmp_path / "dest", url=bogus.as_uri())
    assert not batch_files(tmp_path / "dest")


def test_a_malformed_row_is_located(tmp_path: Path) -> None:
    (tmp_path / "batch1.dat").write_text("1;10.0 1:0.5 2:oops\n")
    with pytest.raises(OverparamError, match=r"batch1.dat:1: feature 2 is .oops., not a number"):
        read_rows([tmp_path / "batch1.dat"], 1)


def test_synthetic_data_is_seeded_and_has_the_requested_conditioning() -> None:
    cfg = SyntheticData(kind="synthetic", n=4000, d=8, condition=1e4, seed=3)
    a, b = load_synthetic(cfg), load_synthetic(cfg)
    assert torch.equal(a.X, b.X) and a.fingerprint == b.fingerprint
    eig = torch.linalg.eigvalsh(a.X.T @ a.X / a.X.shape[0])
    assert 0.5e4 < float(eig[-1] / eig[0]) < 2e4


def official_like_zip(folder: Path, shared: Path) -> Path:
    """A zip laid out like UCI's archive (a Dataset/ folder of batch files beside other files),
    built from the shared files."""
    import zipfile

    archive = folder / "uci.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Dataset/README.txt", "gas sensor array drift")
        for path in batch_files(shared):
            zf.write(path, f"Dataset/{path.name}")
    return archive


def test_a_download_is_checked_extracted_and_read_like_the_shared_files(
    tmp_path: Path, uci_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    archive = official_like_zip(tmp_path, uci_dir)
    monkeypatch.setattr(uci, "UCI_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(uci, "UCI_URL", archive.as_uri())
    monkeypatch.setattr(uci, "cache_dir", lambda: tmp_path / "cache" / "uci-gas-drift")
    folder = locate(None)  # nothing given: the cache, downloaded into
    assert folder == tmp_path / "cache" / "uci-gas-drift"
    assert [p.name for p in batch_files(folder)] == [p.name for p in batch_files(uci_dir)]
    cfg = UciGasData(kind="uci_gas", gas_class=1)
    assert load_uci_gas(cfg, folder).fingerprint == load_uci_gas(cfg, uci_dir).fingerprint
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in batch_files(folder))  # no leftovers


def test_a_download_killed_mid_way_leaves_nothing_a_later_run_trusts(
    tmp_path: Path, uci_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    archive = official_like_zip(tmp_path, uci_dir)
    monkeypatch.setattr(uci, "UCI_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    extract = uci._extract_batches

    def killed_after_one_file(zipped: Path, into: Path) -> None:
        extract(zipped, into)
        raise KeyboardInterrupt  # Ctrl-C between extracting and moving into place

    monkeypatch.setattr(uci, "_extract_batches", killed_after_one_file)
    dest = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        uci.fetch_official_zip(dest, url=archive.as_uri())
    assert not dest.exists()  # no half-extracted cache, not even an empty folder


def test_a_failed_first_download_leaves_no_empty_cache_folder(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        uci.fetch_official_zip(tmp_path / "cache", url=(tmp_path / "missing.zip").as_uri())
    assert not (tmp_path / "cache").exists()


BLAS = ("matmul", "mm", "mv", "bmm", "addmm", "addmv", "dot", "inner", "einsum", "tensordot", "linalg")


def every_data_source(uci: Path, mnist: Path) -> dict[str, str]:
    """Each data source's bits, as a digest: what a run on it starts from."""
    from overparam.data.dataset import standardized, tensor_digest
    from overparam.data.mnist import MnistData, load_mnist

    digests = {}
    for standardize in (False, True):
        for condition in (1.0, 1e6):
            data = load_synthetic(SyntheticData(kind="synthetic", n=300, d=40, condition=condition, noise=0.5, seed=7, standardize=standardize))
            digests[f"synthetic κ={condition:g} z={standardize}"] = tensor_digest(data.X, data.y)
    for gas in (1, 4):
        data = load_uci_gas(UciGasData(kind="uci_gas", gas_class=gas), uci)
        digests[f"uci gas {gas}"] = tensor_digest(data.X, data.y)
        digests[f"uci gas {gas} z twice"] = tensor_digest(*standardized(data.X, data.y))
    images, labels, _ = load_mnist(MnistData(kind="mnist", split="test"), mnist)
    digests["mnist"] = tensor_digest(images, labels)
    return digests


def test_no_data_source_goes_through_blas(uci_dir: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A BLAS product sums in an order that depends on the CPU's instruction set (MKL on AVX-512
    gives other bits than on SSE4.2): no data source may use one. Each BLAS entry point raises here."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a data source called a BLAS product")

    for name in BLAS:
        if hasattr(torch, name):
            monkeypatch.setattr(torch, name, refuse)
        if hasattr(torch.Tensor, name):
            monkeypatch.setattr(torch.Tensor, name, refuse)
    monkeypatch.setattr(torch.Tensor, "__matmul__", refuse)
    monkeypatch.setattr(torch.Tensor, "__rmatmul__", refuse)
    every_data_source(uci_dir, mnist_dir)
    with pytest.raises(AssertionError, match="BLAS"):  # the guard can fail: the old synthetic target
        torch.randn(3, 2) @ torch.randn(2)


@pytest.mark.slow
def test_every_data_source_has_the_same_bits_under_baseline_code_paths(uci_dir: Path, mnist_dir: Path) -> None:
    """What a second CPU would compute: torch and MKL forced to their baseline code paths, one thread."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from test_data import every_data_source; print(json.dumps(every_data_source(Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    results = []
    for env in ({}, {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OMP_NUM_THREADS": "1"}):
        done = subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent), str(uci_dir), str(mnist_dir)],
            capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
        )
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
