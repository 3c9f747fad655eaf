"""The TensorFlow MNIST tutorial convnet, and its overparameterized twin, in torch.nn.

conv 5×5×32 → ReLU → maxpool 2 → conv 5×5×64 → ReLU → maxpool 2 → dense 3136→512 → ReLU
→ dense 512→10 (dropout 0.5 before the last layer, as in the tutorial). The twin replaces
each dense matrix by a product of two (adding 512×512 and 10×10 factors, no nonlinearity in
between), started at the identity (the same function as the original) or, with
`random_factors`, drawn like every other weight. Training: SGD with momentum 0.9, batch 64,
lr 0.01 × 0.95^k (staircase: k counts the epochs, or with `decay_every_images` the blocks of that
many images seen, as the tutorial's train_size of 55,000), and the tutorial's penalty
5e-4 · Σ ‖θ‖²/2 over the dense layers' weights and biases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from overparam.checkpoint import CheckpointedInterrupt, GroupCheckpoint


class Dense(nn.Module):
    """x ↦ x·W₁⋯W_k + b: one dense layer, optionally as a product of k matrices."""

    def __init__(self, fan_in: int, fan_out: int, factors: int, gen: torch.Generator, bias: float, random_factors: bool = False) -> None:
        super().__init__()
        first = _truncated_normal((fan_in, fan_out), 0.1, gen)
        if random_factors:
            extra = [_truncated_normal((fan_out, fan_out), 0.1, gen) for _ in range(factors - 1)]
        else:
            extra = [torch.eye(fan_out) for _ in range(factors - 1)]  # the twin starts as the same function
        self.matrices = nn.ParameterList([nn.Parameter(m) for m in [first, *extra]])
        self.bias = nn.Parameter(torch.full((fan_out,), bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for matrix in self.matrices:
            x = x @ matrix
        return x + self.bias


class TutorialConvnet(nn.Module):
    def __init__(self, overparameterized: bool, seed: int, random_factors: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        factors = 2 if overparameterized else 1
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        with torch.no_grad():
            self.conv1.weight.copy_(_truncated_normal(tuple(self.conv1.weight.shape), 0.1, gen))
            self.conv1.bias.zero_()  # type: ignore[union-attr]  # Conv2d has a bias unless bias=False
            self.conv2.weight.copy_(_truncated_normal(tuple(self.conv2.weight.shape), 0.1, gen))
            self.conv2.bias.fill_(0.1)  # type: ignore[union-attr]  # as above
        self.fc1 = Dense(7 * 7 * 64, 512, factors, gen, bias=0.1, random_factors=random_factors)
        self.fc2 = Dense(512, 10, factors, gen, bias=0.1, random_factors=random_factors)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        logits: torch.Tensor = self.fc2(self.dropout(x))
        return logits

    def dense_penalty(self) -> torch.Tensor:
        """Σ ‖θ‖²/2 over the dense layers' matrices and biases (TensorFlow's l2_loss)."""
        params = [*self.fc1.parameters(), *self.fc2.parameters()]
        total = sum(p.square().sum() for p in params)  # left to right from 0, as always: the same bits
        return cast(torch.Tensor, total) / 2


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_convnet(
    images: torch.Tensor,
    labels: torch.Tensor,
    overparameterized: bool,
    seed: int,
    steps: int,
    record_every: int,
    batch_size: int = 64,
    lr: float = 0.01,
    decay: float = 0.95,
    momentum: float = 0.9,
    penalty: float = 5e-4,
    random_factors: bool = False,
    decay_every_images: int | None = None,
    on_progress: Callable[[int], None] = lambda done: None,
    checkpoint: GroupCheckpoint | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean batch cross-entropy and mean penalty term over each window of `record_every` steps: (T,), (T,).
    With a `checkpoint`, training starts from its saved state if there is one, saves its whole state
    (weights, momentum, both random streams, the epoch's order, the windows so far) whenever one is
    due, and on Ctrl-C saves before raising CheckpointedInterrupt: a resumed run has the same bits."""
    torch.manual_seed(seed)  # dropout masks
    model = TutorialConvnet(overparameterized, seed, random_factors).to(images.device)  # drawn on the CPU: the same weights anywhere
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    order = torch.Generator().manual_seed(seed + 1)
    per_epoch = images.shape[0] // batch_size
    cross_entropy: list[float] = []
    penalties: list[float] = []
    ce_sum = pen_sum = 0.0
    permutation = torch.empty(0, dtype=torch.long)
    start = 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        start, permutation, cross_entropy, penalties, ce_sum, pen_sum = _resumed(saved, model, optimizer, order, images.device)
    with checkpoint.deferring_interrupts() if checkpoint is not None else contextlib.nullcontext():
        for step in range(start, steps):
            if checkpoint is not None and step > start and checkpoint.due():
                checkpoint.save(
                    {
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "dropout_rng": _dropout_rng(images.device),
                        "order_rng": order.get_state(),
                        "permutation": permutation,
                        "windows": {"cross_entropy": cross_entropy, "penalty": penalties, "sums": [ce_sum, pen_sum]},
                    }
                )
                if checkpoint.interrupted:
                    raise CheckpointedInterrupt(f"its checkpoint is at step {step:,} of {steps:,} ({checkpoint.path})", checkpoint.signum)
            epoch, batch = divmod(step, per_epoch)
            if batch == 0:
                permutation = torch.randperm(images.shape[0], generator=order)
            for group in optimizer.param_groups:
                group["lr"] = lr * decay ** decays_so_far(step, epoch, batch_size, decay_every_images)
            index = permutation[batch * batch_size : (batch + 1) * batch_size]
            ce = nn.functional.cross_entropy(model(images[index]), labels[index])
            term = penalty * model.dense_penalty()
            optimizer.zero_grad()
            (ce + term).backward()  # type: ignore[no-untyped-call]  # torch leaves backward() untyped
            optimizer.step()
            ce_sum += float(ce.detach())
            pen_sum += float(term.detach())
            if (step + 1) % record_every == 0:
                cross_entropy.append(ce_sum / record_every)
                penalties.append(pen_sum / record_every)
                ce_sum = pen_sum = 0.0
                on_progress(step + 1)
    return torch.tensor(cross_entropy, dtype=torch.float64), torch.tensor(penalties, dtype=torch.float64)


def _resumed(
    saved: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, order: torch.Generator, device: torch.device
) -> tuple[int, torch.Tensor, list[float], list[float], float, float]:
    """Put a checkpoint's state back: the step to continue from, the epoch's order, the windows so far."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved["dropout_rng"], device)
    else:
        torch.set_rng_state(saved["dropout_rng"])
    order.set_state(saved["order_rng"])
    windows = saved["windows"]
    ce_sum, pen_sum = windows["sums"]
    return int(saved["step"]), saved["permutation"], list(windows["cross_entropy"]), list(windows["penalty"]), ce_sum, pen_sum


def _dropout_rng(device: torch.device) -> torch.Tensor:
    """The state of the stream dropout draws from (the device's own on CUDA)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def decays_so_far(step: int, epoch: int, batch_size: int, every_images: int | None) -> int:
    """The tutorial's staircase: one decay per `every_images` images seen (its train_size, 55,000),
    or per epoch of the images at hand where no period is given."""
    return epoch if every_images is None else step * batch_size // every_images


def _truncated_normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> torch.Tensor:
    """N(0, std²) redrawn beyond two standard deviations, as tf.truncated_normal."""
    values = torch.randn(shape, generator=gen) * std
    outside = values.abs() > 2 * std
    while bool(outside.any()):
        values[outside] = torch.randn(int(outside.sum()), generator=gen) * std
        outside = values.abs() > 2 * std
    return values
