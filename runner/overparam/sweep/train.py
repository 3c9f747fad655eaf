"""Train one group of planned runs (plan.grouped) as one program (executors decide where groups run)."""

from __future__ import annotations

import time

import torch

from overparam.checkpoint import GroupCheckpoint
from overparam.data.dataset import Dataset
from overparam.engine import Stacked, run_loop
from overparam.engine.kernel import kernel_for
from overparam.executors import StepsDone
from overparam.plan import Run
from overparam.store import StoredRun
from overparam.sweep.config import LinearRunConfig
from overparam.sweep.models import Model, model_kind

DTYPES = {"float64": torch.float64, "float32": torch.float32}
# BLAS takes other kernels (another summation order) for products with 1–3 runs than for 4 or
# more; padding each model's runs to 4 makes a run's numbers independent of the group it lands in
# (tests/test_reliability.py proves it bit for bit). The padding copies are trained and dropped.
MIN_BATCH = 4


def train_group(
    group: list[Run], dataset: Dataset, device: str, on_progress: StepsDone, checkpoint: GroupCheckpoint | None = None
) -> list[StoredRun]:
    """One program of plan.grouped: a batched model per shape, one pass over the data per step
    for all of them. Each run's numbers depend only on its own config. With a `checkpoint`, the
    program resumes from it and saves to it (checkpoint.py)."""
    first = linear_config(group[0])
    dtype = DTYPES[first.dtype]
    X = dataset.X.to(device=device, dtype=dtype)
    y = dataset.y.to(device=device, dtype=dtype)
    shapes: dict[str, list[int]] = {}  # batch_key → positions in `group`
    for i, run in enumerate(group):
        shapes.setdefault(run.batch_key, []).append(i)
    models, rows, offset = [], [0] * len(group), 0  # rows[i]: the row of group[i] in the stacked batch
    trained_on = [device] * len(group)  # what computed each run's numbers, for its report
    for positions in shapes.values():
        runs = [group[i] for i in positions]
        padded = runs + [runs[-1]] * (MIN_BATCH - len(runs))
        lr = torch.tensor([r.lr for r in padded], dtype=dtype, device=device)
        batched = _batched_model(padded, X.shape[1], lr, dtype, device)
        for k, i in enumerate(positions):
            rows[i] = offset + k
            # The data pass runs in the C kernels wherever the model's step does (both need a compiler).
            trained_on[i] = f"{device} ({batched.arithmetic})"
        offset += len(padded)
        models.append(batched)
    model = models[0] if len(models) == 1 else Stacked(models)
    last = 0

    def advance(step: int) -> None:
        nonlocal last
        if last == 0 and checkpoint is not None and checkpoint.resumed_at:
            last = min(step, checkpoint.resumed_at)
            on_progress(last * len(group), resumed=True)
        on_progress((step - last) * len(group))
        last = step

    start = time.perf_counter()
    kernel = kernel_for(device)
    loss, steps, every, vectors = first.loss.p, first.steps, first.record_every, first.record_end_to_end
    trace = run_loop(model, X, y, loss, steps, every, advance, vectors, kernel, checkpoint)
    share = (time.perf_counter() - start) / len(group)
    stored = []
    for run, row, where in zip(group, rows, trained_on):
        vector = trace.end_to_end[row] if trace.end_to_end is not None else None
        stored.append(StoredRun(run.key, run.config.model_dump(), trace.losses[row], trace.diverged_at[row], share, where, vector))
    return stored


def _batched_model(group: list[Run], d: int, lr: torch.Tensor, dtype: torch.dtype, device: str) -> Model:
    configs = [linear_config(run) for run in group]
    return model_kind(configs[0].model["kind"]).batched(configs, d, lr, dtype, device)


def linear_config(run: Run) -> LinearRunConfig:
    """The run's config as a regression run's (the only kind this module trains)."""
    assert isinstance(run.config, LinearRunConfig), f"not a regression run: {type(run.config).__name__}"
    return run.config
