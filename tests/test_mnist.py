"""The IDX reader on the real shared MNIST test split, and the tutorial convnet's shape."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from conftest import MNIST_DIR, needs_mnist
from overparam.data.mnist import MnistData, load_mnist, locate, read_idx
from overparam.engine.convnet import TutorialConvnet, decays_so_far, parameter_count, train_convnet
from overparam.errors import OverparamError

MNIST = MNIST_DIR
pytestmark = needs_mnist


def test_the_test_split_has_10k_images_and_labels_in_range() -> None:
    images, labels, fingerprint = load_mnist(MnistData(kind="mnist", split="test"), MNIST)
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)
    assert images.min() == -0.5 and images.max() == 0.5
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert torch.bincount(labels).tolist()[:3] == [980, 1135, 1032]
    assert len(fingerprint) == 16


def test_idx_reader_takes_plain_and_gzipped_files_and_rejects_truncated_ones(tmp_path: Path) -> None:
    header = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    (tmp_path / "plain").write_bytes(header + bytes(range(6)))
    (tmp_path / "zipped").write_bytes(gzip.compress(header + bytes(range(6))))
    assert read_idx(tmp_path / "plain").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert torch.equal(read_idx(tmp_path / "zipped"), read_idx(tmp_path / "plain"))
    (tmp_path / "short").write_bytes(header + bytes(range(5)))
    with pytest.raises(OverparamError, match="header says 6 values"):
        read_idx(tmp_path / "short")


def test_a_folder_without_the_split_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OverparamError, match="no MNIST train split"):
        locate(tmp_path, "train")


def test_the_overparameterized_twin_adds_about_16_percent_parameters_and_starts_as_the_same_function() -> None:
    original, twin = TutorialConvnet(False, seed=0), TutorialConvnet(True, seed=0)
    assert parameter_count(twin) - parameter_count(original) == 512 * 512 + 10 * 10
    assert 0.155 < parameter_count(twin) / parameter_count(original) - 1 < 0.16
    x = torch.randn(4, 1, 28, 28)
    original.eval(), twin.eval()
    assert torch.allclose(original(x), twin(x), atol=1e-5)


def test_random_added_factors_start_as_another_function_with_a_larger_penalty() -> None:
    identity, random = TutorialConvnet(True, seed=0), TutorialConvnet(True, seed=0, random_factors=True)
    assert parameter_count(random) == parameter_count(identity)
    assert torch.equal(random.fc1.matrices[0], identity.fc1.matrices[0])  # the tutorial's weights: the same draw
    assert not torch.equal(random.fc1.matrices[1], torch.eye(512))
    assert float(random.fc1.matrices[1].detach().abs().max()) <= 0.2  # truncated at two standard deviations
    assert float(random.dense_penalty().detach()) > float(identity.dense_penalty().detach())


def test_added_factors_need_the_twin() -> None:
    from pydantic import ValidationError

    from overparam.kinds.convnet.spec import TutorialConvnetModel

    with pytest.raises(ValidationError, match="overparameterized twin only"):
        TutorialConvnetModel(kind="tutorial_convnet", name="x", added_factors="random")


def test_training_records_cross_entropy_and_penalty_apart() -> None:
    images, labels, _ = load_mnist(MnistData(kind="mnist", split="test"), MNIST)
    ce, penalty = train_convnet(images[:640], labels[:640], overparameterized=False, seed=0, steps=20, record_every=10)
    assert ce.shape == penalty.shape == (2,)
    assert ce[1] < ce[0]  # learning
    assert 2.5 < float(penalty[0]) < 4.0  # the tutorial's penalty is ≈3 at init, as CLAIMS.md notes


def test_the_tutorials_decay_period_counts_images_seen_not_epochs_of_the_split() -> None:
    # The tutorial decays once per train_size = 55,000 images: 859 steps of 64, then the first decay,
    # and 9 decays by its last step (10 epochs ≈ 8.6k steps), whatever split is at hand.
    assert decays_so_far(859, epoch=85, batch_size=64, every_images=55_000) == 0
    assert decays_so_far(860, epoch=86, batch_size=64, every_images=55_000) == 1
    assert decays_so_far(8_599, epoch=55, batch_size=64, every_images=55_000) == 10
    assert decays_so_far(8_593, epoch=55, batch_size=64, every_images=55_000) == 9
    assert decays_so_far(8_599, epoch=55, batch_size=64, every_images=None) == 55  # once per epoch of the 10k split


def test_a_decay_period_of_one_epoch_gives_the_epoch_schedules_bits_and_a_shorter_one_changes_the_run() -> None:
    images, labels, _ = load_mnist(MnistData(kind="mnist", split="test"), MNIST)
    images, labels = images[:320], labels[:320]  # 5 steps of 64 per epoch

    def run(every: int | None) -> torch.Tensor:
        ce, _ = train_convnet(
            images, labels, overparameterized=False, seed=0, steps=12, record_every=4, decay=0.5, decay_every_images=every
        )
        return ce

    per_epoch = run(None)
    assert torch.equal(run(320), per_epoch)
    assert not torch.equal(run(64), per_epoch)


def test_an_unset_decay_period_leaves_a_runs_key_as_it_was() -> None:
    from pydantic import ValidationError

    from overparam.kinds.convnet.spec import ConvnetTrain

    assert "decay_every_images" not in ConvnetTrain(steps=300, record_every=25).model_dump()
    assert ConvnetTrain(steps=300, record_every=25, decay_every_images=55_000).model_dump()["decay_every_images"] == 55_000
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ConvnetTrain(steps=300, record_every=25, decay_every_images=0)


def test_a_download_from_a_mirror_is_checked_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from overparam.data import mnist

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sums = {}
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (mirror / name).write_bytes((MNIST / name).read_bytes())
        sums[name] = hashlib.md5((mirror / name).read_bytes()).hexdigest()
    monkeypatch.setattr(mnist, "FILES", sums)
    monkeypatch.setattr(mnist, "MIRROR", mirror.as_uri() + "/")
    monkeypatch.setattr(mnist, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv("OVERPARAM_MNIST", raising=False)
    images, labels = locate(None, "test")
    assert images.parent == tmp_path / "cache"
    downloaded = load_mnist(MnistData(kind="mnist", split="test"), None)
    assert downloaded[2] == load_mnist(MnistData(kind="mnist", split="test"), MNIST)[2]


def test_a_convnet_run_stopped_mid_epoch_resumes_from_its_checkpoint_bit_for_bit(tmp_path: Path) -> None:
    from overparam.checkpoint import CheckpointedInterrupt, Checkpoints

    images, labels, _ = load_mnist(MnistData(kind="mnist", split="test"), MNIST)
    images, labels = images[:320], labels[:320]  # 5 steps of 64 per epoch: the stop falls mid-epoch
    settings = dict(overparameterized=True, seed=3, steps=14, record_every=4, decay=0.5, decay_every_images=192)
    whole = train_convnet(images, labels, **settings)  # type: ignore[arg-type]  # the settings' types are the parameters'

    checkpoint = Checkpoints(tmp_path / "checkpoints", every_s=3600.0).for_group(["a run"])

    def ctrl_c_after_step_8(step: int) -> None:
        if step == 8:
            checkpoint.interrupted = True  # what SIGINT sets: the next step boundary saves, then stops

    with pytest.raises(CheckpointedInterrupt, match="step 8 of 14"):
        train_convnet(images, labels, on_progress=ctrl_c_after_step_8, checkpoint=checkpoint, **settings)  # type: ignore[arg-type]
    torch.manual_seed(12345)  # another process: the global stream dropout draws from is not where it was
    resumed_from = Checkpoints(tmp_path / "checkpoints").for_group(["a run"])
    again = train_convnet(images, labels, checkpoint=resumed_from, **settings)  # type: ignore[arg-type]
    assert resumed_from.resumed_at == 8
    assert torch.equal(again[0], whole[0]) and torch.equal(again[1], whole[1])
    # Without the random streams restored the resumed run differs: the test can see a wrong resume.
    broken = Checkpoints(tmp_path / "broken", every_s=0.0).for_group(["a run"])
    with pytest.raises(CheckpointedInterrupt):
        train_convnet(images, labels, on_progress=lambda step: setattr(broken, "interrupted", step == 8), checkpoint=broken, **settings)  # type: ignore[arg-type]
    saved = broken.load()
    assert saved is not None
    saved["order_rng"] = torch.Generator().manual_seed(99).get_state()
    broken.save(saved)  # a valid digest over the wrong stream: what only the numbers can show
    resumed_wrongly = Checkpoints(tmp_path / "broken").for_group(["a run"])
    assert not torch.equal(train_convnet(images, labels, checkpoint=resumed_wrongly, **settings)[0], whole[0])  # type: ignore[arg-type]
