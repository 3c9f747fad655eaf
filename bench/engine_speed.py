"""Engine speed against a plain PyTorch loop and against the data-pass limit.

    python bench/engine_speed.py            # CPU (and CUDA where present); prints Markdown tables

Workloads are shaped like the paper's Ethanol task (2565 × 128, ℓ4). "plain loop" is what a user
would write: an nn.Linear stack without bias, autograd, torch.optim.SGD, one run at a time.
"data pass" is the floor for any full-batch method: one X·v and one Xᵀ·u per run and step,
timed as the same two batched matrix products the engine makes. Ratios are per run-step.
"ours" on the CPU is the engine with its fused C kernel (engine/fused_step.c); "torch ops only" is
the same engine without it: what runs where there is no C compiler.
Not a test: timings depend on the machine; run it on a quiet one. A shared VM's timings move by
±25% from one measurement to the next, so each workload is measured `--repeat` times, each time
right after its data-pass floor, and the table shows medians (the ratio: the median of the
per-repetition ratios).

The second table is the data pass shared by models of different shapes (plan.grouped packs
them into one program): the same runs trained one model after the other, each with its own
pass over the data, and stacked into one program with one pass. The third is the memory that
training adds to a fresh process, by runs and steps: flat in the steps (only the recorded
losses grow), linear in the runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
from torch import nn

from overparam.engine import DeepLinear, Stacked, run_loop
from overparam.engine.init import NormalInit, initial_layers
from overparam.engine.kernel import FusedKernel, kernel_for
from overparam.engine.optim import AdaDelta, AdaGrad, Adam, Optimizer

N, D = 2565, 128


def problem(device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(D, generator=gen, dtype=torch.float64) / D**0.5
    return X.to(device, dtype), y.to(device, dtype)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def deep_linear(
    depth: int,
    width: int,
    runs: int,
    device: str,
    dtype: torch.dtype,
    kernel: FusedKernel | None = None,
    optimizer: Optimizer | None = None,
) -> DeepLinear:
    """`runs` runs of one shape, seeds 0…runs−1, at lr 1e-4 (stable for every workload here)."""
    inits = [initial_layers(NormalInit(kind="normal", std=0.01), D, depth, width, seed) for seed in range(runs)]
    layers = [torch.stack([i[j] for i in inits]).to(device, dtype) for j in range(depth)]
    return DeepLinear(layers, torch.full((runs,), 1e-4, dtype=dtype, device=device), 0.0, optimizer, kernel=kernel)


def ours_us(
    shapes: list[tuple[int, int, int]],
    steps: int,
    device: str,
    dtype: torch.dtype,
    shared: bool = True,
    kernel: FusedKernel | None = None,
    optimizer: Optimizer | None = None,
) -> float:
    """µs per run-step of the engine on `shapes` (depth, width, runs): one program with one data
    pass for all (`shared`), or one program per shape, one after the other."""
    X, y = problem(device, dtype)
    programs = (
        [[deep_linear(*shape, device, dtype, kernel, optimizer) for shape in shapes]]
        if shared
        else [[deep_linear(*shape, device, dtype, kernel, optimizer)] for shape in shapes]
    )
    models = [models[0] if len(models) == 1 else Stacked(models) for models in programs]
    for model in models:
        run_loop(model, X, y, 4.0, 5, 5)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for model in models:
        run_loop(model, X, y, 4.0, steps, steps)
    _sync(device)
    return (time.perf_counter() - start) / (steps * sum(runs for _, _, runs in shapes)) * 1e6


TORCH_OPTIM = {"gd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam}


def plain_loop_us(depth: int, width: int, steps: int, device: str, dtype: torch.dtype, optimizer: str = "gd") -> float:
    """µs per step of one nn.Linear-stack run with autograd and torch.optim's `optimizer` (defaults)."""
    X, y = problem(device, dtype)
    dims = [D] + [width] * (depth - 1) + [1]
    model = nn.Sequential(*[nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:])]).to(device, dtype)
    opt = TORCH_OPTIM[optimizer](model.parameters(), lr=1e-4)

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


def medians(repeat: int, measures: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each measure's median over `repeat` rounds, the measures interleaved in every round, and
    "ratio <name>": the median of <name>'s per-round ratio to the first measure."""
    rounds = [{name: measure() for name, measure in measures.items()} for _ in range(repeat)]
    first = next(iter(measures))
    result = {name: statistics.median(r[name] for r in rounds) for name in measures}
    result.update({f"ratio {name}": statistics.median(r[name] / r[first] for r in rounds) for name in measures})
    return result


WORKLOADS = [(1, 1), (2, 1), (3, 1), (3, 10), (2, 100), (3, 100), (4, 100), (8, 100)]
SHARED_WORKLOADS = {
    "l4_depth default: depths 1, 2, 3 (width 100) × 21 runs": [(1, 1, 21), (2, 100, 21), (3, 100, 21)],
    "width: depth 2 at 8 widths (1…200) × 4 runs": [(2, w, 4) for w in (1, 2, 5, 10, 20, 50, 100, 200)],
}


def engine_table(device: str, dtype: torch.dtype, args: argparse.Namespace) -> None:
    kernel = kernel_for(device)
    for depth, width in WORKLOADS:
        timed_plain = (depth, width) == (3, 100)
        measures = {
            "floor": partial(data_pass_us, args.runs, args.steps, device, dtype),
            "ours": partial(ours_us, [(depth, width, args.runs)], args.steps, device, dtype, kernel=kernel),
        }
        if kernel is not None:  # the same engine without its fused kernel: what it does without a C compiler
            measures["ops"] = partial(ours_us, [(depth, width, args.runs)], args.steps, device, dtype, kernel=None)
        if timed_plain:
            measures["plain"] = partial(plain_loop_us, depth, width, max(10, args.steps // 10), device, dtype)
        m = medians(args.repeat, measures)
        ratio = f"{m['ratio plain'] / m['ratio ours']:.0f}×" if timed_plain else "—"
        plain = f"{m['plain']:.0f}" if timed_plain else "—"
        ops = f"{m['ops']:.1f} | {m['ratio ops']:.1f}" if kernel is not None else "— | —"
        name = f"depth {depth}, width {width}, {args.runs} runs"
        print(
            f"| {device} | {str(dtype).removeprefix('torch.')} | {name} | {m['ours']:.1f} | {plain} | {ratio} | {m['floor']:.1f} | {m['ratio ours']:.1f} | {ops} |",
            flush=True,
        )


OPTIMIZERS: list[Optimizer | None] = [None, AdaGrad(kind="adagrad"), AdaDelta(kind="adadelta"), Adam(kind="adam")]


def optimizer_table(device: str, dtype: torch.dtype, args: argparse.Namespace) -> None:
    """Each optimizer on deep nets: the engine (its kernel), the same engine in torch ops, a plain
    torch.optim loop of one run, and the data-pass floor."""
    kernel = kernel_for(device)
    for optimizer in OPTIMIZERS:
        name = optimizer.kind if optimizer is not None else "gd"
        for depth, width in [(1, 1), (2, 100), (3, 100)]:
            shape = [(depth, width, args.runs)]
            measures = {
                "floor": partial(data_pass_us, args.runs, args.steps, device, dtype),
                "ours": partial(ours_us, shape, args.steps, device, dtype, kernel=kernel, optimizer=optimizer),
                "ops": partial(ours_us, shape, args.steps, device, dtype, kernel=None, optimizer=optimizer),
                "plain": partial(plain_loop_us, depth, width, max(10, args.steps // 10), device, dtype, name),
            }
            m = medians(args.repeat, measures)
            print(
                f"| {device} | {str(dtype).removeprefix('torch.')} | {name} | depth {depth}, width {width}, {args.runs} runs "
                f"| {m['ours']:.1f} | {m['ratio ours']:.1f} | {m['ops']:.1f} | {m['ratio ops']:.1f} | {m['plain']:.0f} "
                f"| {m['ratio plain'] / m['ratio ours']:.0f}× | {m['floor']:.1f} |",
                flush=True,
            )


def sharing_table(device: str, dtype: torch.dtype, args: argparse.Namespace) -> None:
    for name, shapes in SHARED_WORKLOADS.items():
        m = medians(
            args.repeat,
            {
                "apart": partial(ours_us, shapes, args.steps, device, dtype, shared=False, kernel=kernel_for(device)),
                "shared": partial(ours_us, shapes, args.steps, device, dtype, shared=True, kernel=kernel_for(device)),
            },
        )
        print(
            f"| {device} | {str(dtype).removeprefix('torch.')} | {name} | {m['apart']:.1f} | {m['shared']:.1f} | {1 / m['ratio shared']:.2f}× |",
            flush=True,
        )


def resident_mb(runs: int, steps: int) -> float:
    """Growth of resident memory in a fresh process while it trains `runs` depth-3, width-100
    runs for `steps` steps in float64, recording every 100 steps: measured after the data is
    loaded and before the model is built, and again after training, with the model and the
    recorded losses still alive."""
    code = (
        "import os, sys, torch; sys.path.insert(0, 'bench'); import engine_speed as b\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "X, y = b.problem('cpu', torch.float64); before = rss()\n"
        f"model = b.deep_linear(3, 100, {runs}, 'cpu', torch.float64, b.kernel_for('cpu'))\n"
        f"trace = b.run_loop(model, X, y, 4.0, {steps}, 100)\n"
        "print(rss() - before)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    return int(out.stdout.split()[-1]) / 2**20


def memory_table() -> None:
    per_run = 8 * (D * 100 + 100 * 100 + 100) / 2**20  # the three layers of one run, float64
    for runs, steps in [(48, 1000), (48, 30000), (96, 1000), (192, 1000)]:
        print(f"| {runs} | {steps} | {resident_mb(runs, steps):.1f} | {runs * per_run:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="engine steps per measurement")
    parser.add_argument("--runs", type=int, default=48, help="runs batched together (12 lrs × 4 seeds)")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per number (the median is shown)")
    parser.add_argument("--only", choices=["engine", "optimizers", "sharing", "memory"], help="print one table")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    names = [torch.cuda.get_device_name(0)] if "cuda" in devices else []
    kernel = kernel_for("cpu")
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {', '.join(names) or 'no GPU'}, torch {torch.__version__}, "
        f"fused kernel: {kernel.path.name if kernel else 'none (no C compiler)'}, {datetime.now(timezone.utc):%Y-%m-%d}"
    )
    if args.only in (None, "engine"):
        print(
            "\n| device | dtype | workload | ours µs/run-step | plain loop µs/step | ratio | data pass µs/run-step | ours / data pass "
            "| torch ops only µs/run-step | torch ops / data pass |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for device in devices:
            for dtype in (torch.float64, torch.float32):
                engine_table(device, dtype, args)
    if args.only in (None, "optimizers"):
        print(
            "\n| device | dtype | optimizer | workload | ours µs/run-step | ours / data pass | torch ops only µs/run-step "
            "| torch ops / data pass | plain torch.optim loop µs/step | ratio | data pass µs/run-step |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for device in devices:
            optimizer_table(device, torch.float64, args)
    if args.only in (None, "sharing"):
        print("\n| device | dtype | workload | a program per shape µs/run-step | one shared program µs/run-step | speed-up |")
        print("|---|---|---|---|---|---|")
        for device in devices:
            for dtype in (torch.float64, torch.float32):
                sharing_table(device, dtype, args)
    if args.only in (None, "memory"):
        print("\n| runs (depth 3, width 100, float64, CPU) | steps | resident memory added by training, MB | the runs' weights, MB |")
        print("|---|---|---|---|")
        memory_table()


if __name__ == "__main__":
    main()
