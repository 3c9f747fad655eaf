"""Engine speed against a plain PyTorch loop and against the data-pass limit.

    python bench/engine_speed.py            # CPU (and CUDA where present); prints a Markdown table

Workloads are shaped like the paper's Ethanol task (2565 × 128, ℓ4). "plain loop" is what a user
would write: an nn.Linear stack without bias, autograd, torch.optim.SGD, one run at a time.
"data pass" is the floor for any full-batch method: one X·v and one Xᵀ·u per run and step,
timed as the same two batched matrix products the engine makes. Ratios are per run-step.
Not a test: timings depend on the machine; run it on a quiet one. Each number is the median of
`--repeat` measurements, since a shared VM's timings move by ±25% from one to the next.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone

import torch
from torch import nn

from overparam.engine import DeepLinear, run_loop
from overparam.engine.init import NormalInit, initial_layers

N, D = 2565, 128


def problem(device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(D, generator=gen, dtype=torch.float64) / D**0.5
    return X.to(device, dtype), y.to(device, dtype)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def ours_us(depth: int, width: int, runs: int, steps: int, device: str, dtype: torch.dtype) -> float:
    """µs per run-step of the engine on `runs` runs batched together."""
    X, y = problem(device, dtype)
    inits = [initial_layers(NormalInit(kind="normal", std=0.01), D, depth, width, seed) for seed in range(runs)]
    layers = [torch.stack([i[j] for i in inits]).to(device, dtype) for j in range(depth)]
    lr = torch.full((runs,), 1e-4, dtype=dtype, device=device)
    run_loop(DeepLinear([W.clone() for W in layers], lr, 0.0), X, y, 4.0, 5, 5)  # warm-up
    _sync(device)
    start = time.perf_counter()
    run_loop(DeepLinear(layers, lr, 0.0), X, y, 4.0, steps, steps)
    _sync(device)
    return (time.perf_counter() - start) / (steps * runs) * 1e6


def plain_loop_us(depth: int, width: int, steps: int, device: str, dtype: torch.dtype) -> float:
    """µs per step of one nn.Linear-stack run with autograd and torch.optim.SGD."""
    X, y = problem(device, dtype)
    dims = [D] + [width] * (depth - 1) + [1]
    model = nn.Sequential(*[nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:])]).to(device, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = (model(X).squeeze(1) - y).pow(4).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - start) / steps * 1e6


def data_pass_us(runs: int, steps: int, device: str, dtype: torch.dtype) -> float:
    """µs per run-step of the floor: X·v and Xᵀ·u for `runs` runs at once."""
    X, _ = problem(device, dtype)
    w = torch.randn(runs, D, device=device, dtype=dtype)
    u = torch.randn(runs, N, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(w, X.T), torch.mm(u, X)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        torch.mm(w, X.T)
        torch.mm(u, X)
    _sync(device)
    return (time.perf_counter() - start) / (steps * runs) * 1e6


def median_us(repeat: int, measure: Callable[..., float], *args: object) -> float:
    """The median of `repeat` calls of `measure(*args)`."""
    return statistics.median(measure(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="engine steps per measurement")
    parser.add_argument("--runs", type=int, default=48, help="runs batched together (12 lrs × 4 seeds)")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per number (the median is shown)")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {datetime.now(timezone.utc):%Y-%m-%d}"
    )
    print("\n| device | dtype | workload | ours µs/run-step | plain loop µs/step | ratio | data pass µs/run-step | ours / data pass |")
    print("|---|---|---|---|---|---|---|---|")
    for device in devices:
        for dtype in (torch.float64, torch.float32):
            floor = median_us(args.repeat, data_pass_us, args.runs, args.steps, device, dtype)
            for depth, width in [(1, 1), (2, 1), (3, 1), (3, 10), (2, 100), (3, 100), (4, 100), (8, 100)]:
                ours = median_us(args.repeat, ours_us, depth, width, args.runs, args.steps, device, dtype)
                timed_plain = (depth, width) == (3, 100)
                plain = (
                    median_us(args.repeat, plain_loop_us, depth, width, max(10, args.steps // 10), device, dtype) if timed_plain else None
                )
                ratio = f"{plain / ours:.0f}×" if plain else "—"
                plain_text = f"{plain:.0f}" if plain else "—"
                name = f"depth {depth}, width {width}, {args.runs} runs"
                print(
                    f"| {device} | {str(dtype).removeprefix('torch.')} | {name} | {ours:.1f} | {plain_text} | {ratio} | {floor:.1f} | {ours / floor:.1f} |"
                )


if __name__ == "__main__":
    main()
