"""The fused C step kernel: the same trajectories as the torch ops, numbers that depend on
nothing but the run, and a clear fallback where it cannot be built."""

from __future__ import annotations

import pytest
import torch

from overparam.engine import DeepLinear, run_loop
from overparam.engine.init import NormalInit, initial_layers
from overparam.engine.kernel import FusedKernel, fused_kernel


def problem(dtype: torch.dtype, n: int = 60, d: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(d, generator=gen, dtype=torch.float64) / d**0.5 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    return X.to(dtype), y.to(dtype)


def model(
    depth: int, width: int, lrs: list[float], dtype: torch.dtype, kernel: FusedKernel | None, wd: float = 0.0, seed: int = 0
) -> DeepLinear:
    std = 0.5 / max(width, 3) ** 0.5  # products stay near 1 at every depth
    inits = [initial_layers(NormalInit(kind="normal", std=std), 21, depth, width, seed + s) for s in range(len(lrs))]
    layers = [torch.stack([i[j] for i in inits]).to(dtype) for j in range(depth)]
    return DeepLinear(layers, torch.tensor(lrs, dtype=dtype), wd, kernel=kernel)


# Widths that are and are not a multiple of the kernel's 8 (float64) or 16 (float32) partial sums.
@pytest.mark.parametrize("depth,width", [(1, 1), (2, 1), (2, 9), (3, 16), (4, 20), (6, 3)])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_the_kernel_follows_the_torch_ops_trajectory_in_float64(fused: FusedKernel, depth: int, width: int, wd: float) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-4, 3e-4, 1e-3, 3e-3]
    ops = run_loop(model(depth, width, lrs, torch.float64, None, wd), X, y, 4.0, 300, 10)
    kern = run_loop(model(depth, width, lrs, torch.float64, fused, wd), X, y, 4.0, 300, 10)
    assert torch.isfinite(ops.losses).all()
    assert torch.allclose(kern.losses, ops.losses, rtol=1e-12, atol=0)


def test_the_kernel_follows_the_torch_ops_trajectory_in_float32(fused: FusedKernel) -> None:
    X, y = problem(torch.float32)
    lrs = [1e-4, 1e-3, 3e-3, 1e-2]
    ops = run_loop(model(3, 20, lrs, torch.float32, None), X, y, 4.0, 300, 10)
    kern = run_loop(model(3, 20, lrs, torch.float32, fused), X, y, 4.0, 300, 10)
    assert torch.allclose(kern.losses, ops.losses, rtol=1e-4, atol=0)


def test_the_kernels_numbers_do_not_depend_on_the_thread_count(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]  # an odd count: threads get unequal shares
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_loop(model(3, 20, lrs, torch.float64, fused), X, y, 4.0, 200, 20)
        torch.set_num_threads(2)
        two = run_loop(model(3, 20, lrs, torch.float64, fused), X, y, 4.0, 200, 20)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one.losses, two.losses)


def test_a_run_in_the_kernel_does_not_depend_on_its_batch(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    together = run_loop(model(3, 9, [1e-4, 1e-3, 3e-3], torch.float64, fused), X, y, 4.0, 200, 20)
    alone = run_loop(model(3, 9, [1e-3], torch.float64, fused, seed=1), X, y, 4.0, 200, 20)
    assert torch.equal(together.losses[1], alone.losses[0])


def test_a_diverging_run_in_the_kernel_is_frozen_and_the_others_go_on(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-3, 50.0, 3e-3, 1e-4]
    kern = run_loop(model(2, 9, lrs, torch.float64, fused), X, y, 4.0, 200, 10)
    ops = run_loop(model(2, 9, lrs, torch.float64, None), X, y, 4.0, 200, 10)
    assert kern.diverged_at == ops.diverged_at and kern.diverged_at[1] is not None
    others = [0, 2, 3]
    assert torch.allclose(kern.losses[others], ops.losses[others], rtol=1e-12, atol=0)


def test_the_kernel_is_not_used_where_it_does_not_apply(fused: FusedKernel) -> None:
    from overparam.engine.optim import parse_optimizer

    adam = parse_optimizer({"kind": "adam"})
    layers = [W.to(torch.float64) for W in model(2, 3, [1e-3], torch.float64, None).layers]
    assert DeepLinear(layers, torch.tensor([1e-3], dtype=torch.float64), 0.0, adam, kernel=fused).uses_kernel is False
    assert DeepLinear(layers, torch.tensor([1e-3], dtype=torch.float64), 0.0, kernel=fused).uses_kernel is True
    half = [W.to(torch.float16) for W in layers]
    assert DeepLinear(half, torch.tensor([1e-3], dtype=torch.float16), 0.0, kernel=fused).uses_kernel is False


@pytest.mark.parametrize("compiler", ["no-such-compiler-here", "false"])
def test_without_a_working_compiler_the_engine_falls_back_with_one_line(
    compiler: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC", compiler)
    fused_kernel.cache_clear()
    try:
        assert fused_kernel() is None
    finally:
        fused_kernel.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("overparam:") and "torch ops" in err[0]
