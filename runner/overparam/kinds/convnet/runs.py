"""The convnet claim's runs: plan (model × seed), train the missing ones, read results.

Each run is one torch.nn training (float32, CPU or CUDA); its batch cross-entropy is stored
as the run's loss curve (L* = 0) and the L2 penalty term beside it.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from overparam.checkpoint import Checkpoints, GroupCheckpoint
from overparam.engine.convnet import train_convnet
from overparam.executors import StepsDone
from overparam.kinds.convnet.spec import ConvnetSpec, ConvnetTrain
from overparam.plan import Run, RunConfig
from overparam.results import ModelResult, Results
from overparam.store import RunStore, StoredRun


class ConvnetRunConfig(RunConfig):
    """A convnet run: the model (original or overparameterized twin), the training, the seed."""

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


def train_convnet_runs(
    runs: list[Run],
    images: torch.Tensor,
    labels: torch.Tensor,
    store: RunStore,
    device: str,
    on_progress: StepsDone,
    checkpoints: Checkpoints | None = None,
) -> None:
    """One run at a time (each is already a batched program), stored as it finishes. With
    `checkpoints`, a run saves its state every few minutes and on Ctrl-C, and resumes from it."""
    images, labels = images.to(device), labels.to(device)
    for run in runs:
        checkpoint = checkpoints.for_group([run.key]) if checkpoints is not None else None
        store.put([_trained(run, images, labels, device, on_progress, checkpoint)])
        if checkpoints is not None:
            checkpoints.discard([run.key])


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
