"""The convnet claim's runs: plan (model × seed), train one (the executors train the missing ones), read results.

Each run is one torch.nn training (float32, CPU or CUDA); its batch cross-entropy is stored
as the run's loss curve (L* = 0) and the L2 penalty term beside it.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import torch

from overparam.checkpoint import GroupCheckpoint
from overparam.data.dataset import Dataset
from overparam.engine.convnet import train_convnet
from overparam.executors import StepsDone
from overparam.kinds.convnet.spec import ConvnetSpec, ConvnetTrain
from overparam.plan import Run, RunConfig
from overparam.results import ModelResult, Results
from overparam.store import StoredRun


class ConvnetRunConfig(RunConfig):
    """A convnet run: the model (original or overparameterized twin), the training, the seed."""

    batchable: ClassVar[bool] = False  # each run is one torch program of its own
    model: dict[str, Any]  # {kind, overparameterized} (+ added_factors where not the identity, so older keys stay)
    train: ConvnetTrain
    seed: int

    def total_steps(self) -> int:
        return self.train.steps


def plan_convnet_runs(spec: ConvnetSpec, data_fingerprint: str) -> list[Run]:
    runs = []
    for model in spec.models:
        for seed in spec.seeds:
            described = {"kind": model.kind, "overparameterized": model.overparameterized}
            if model.added_factors != "identity":
                described["added_factors"] = model.added_factors
            config = ConvnetRunConfig(model=described, train=spec.train, seed=seed)
            runs.append(Run(model.name, spec.train.lr, seed, config, config.key(data_fingerprint)))
    return runs


def train_convnet_group(
    group: list[Run], dataset: Dataset, device: str, on_progress: StepsDone, checkpoint: GroupCheckpoint | None = None
) -> list[StoredRun]:
    """The convnet's GroupTrainer (executors): a group is one run (its config is not batchable),
    trained on MNIST held as a Dataset of flattened pixels (X) and labels (y). With a checkpoint,
    it saves its state every few minutes and on a stopping signal, and resumes from it."""
    images, labels = dataset.X.view(-1, 1, 28, 28).to(device), dataset.y.to(device)
    return [_trained(run, images, labels, device, on_progress, checkpoint) for run in group]


def _trained(
    run: Run, images: torch.Tensor, labels: torch.Tensor, device: str, on_progress: StepsDone, checkpoint: GroupCheckpoint | None
) -> StoredRun:
    assert isinstance(run.config, ConvnetRunConfig), f"not a convnet run: {type(run.config).__name__}"
    config, train = run.config, run.config.train
    start = time.perf_counter()
    last = 0

    def advance(step: int) -> None:
        nonlocal last
        if last == 0 and checkpoint is not None and checkpoint.resumed_at:
            last = min(step, checkpoint.resumed_at)
            on_progress(last, resumed=True)  # trained in an earlier process: not toward the pace
        on_progress(step - last)
        last = step

    ce, penalty = train_convnet(
        images,
        labels,
        config.model["overparameterized"],
        run.seed,
        train.steps,
        train.record_every,
        batch_size=train.batch_size,
        lr=train.lr,
        decay=train.decay,
        momentum=train.momentum,
        penalty=train.penalty,
        random_factors=config.model.get("added_factors") == "random",
        decay_every_images=train.decay_every_images,
        on_progress=advance,
        checkpoint=checkpoint,
    )
    finite = bool(torch.isfinite(ce).all() and torch.isfinite(penalty).all())
    diverged = None if finite else int(train.record_every * (1 + int((~torch.isfinite(ce + penalty)).nonzero()[0, 0])))
    return StoredRun(run.key, config.model_dump(), ce, diverged, time.perf_counter() - start, device, penalty=penalty)


def convnet_results(spec: ConvnetSpec, runs: list[Run], stored: dict[str, StoredRun]) -> Results:
    """Each model's batch cross-entropy per seed (as its loss, L* = 0) with the penalty beside it."""
    steps = torch.arange(spec.train.record_every, spec.train.steps + 1, spec.train.record_every, dtype=torch.float64)
    picked: dict[str, ModelResult] = {}
    for model in spec.models:
        mine = [stored[r.key] for r in runs if r.model == model.name]
        diverged = [f"seed {s} at step {r.diverged_at}" for s, r in zip(spec.seeds, mine) if r.diverged_at is not None]
        losses = torch.stack([r.losses for r in mine])
        penalty = torch.stack([r.penalty for r in mine if r.penalty is not None])
        lr = None if diverged else spec.train.lr
        picked[model.name] = ModelResult(
            model.name, lr, spec.seeds, steps, losses, 0.0, why_none="diverged: " + ", ".join(diverged), penalty=penalty
        )
    return Results(picked, {name: {spec.train.lr: result} for name, result in picked.items()})
