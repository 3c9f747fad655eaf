"""The C kernels: the same trajectories as the torch ops, numbers that depend on nothing but the
run (not the instruction set, the thread count or the runs beside it), and a clear fallback where
they cannot be built."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import EVERY_KIND_MODELS, all_losses, planned_runs_of_every_kind, small_spec, write_spec
from overparam.engine import DeepLinear, loop, run_loop
from overparam.engine.init import NormalInit, initial_layers
from overparam.engine.kernel import BoundStep, FusedKernel, build, compiler, fused_kernel, load_kernel
from overparam.engine.optim import AdaDelta, AdaGrad, Adam, Optimizer
from overparam.plan import grouped
from overparam.sweep.train import train_group


def problem(dtype: torch.dtype, n: int = 60, d: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(d, generator=gen, dtype=torch.float64) / d**0.5 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    return X.to(dtype), y.to(dtype)


def model(
    depth: int,
    width: int,
    lrs: list[float],
    dtype: torch.dtype,
    kernel: FusedKernel | None,
    wd: float = 0.0,
    seed: int = 0,
    optimizer: Optimizer | None = None,
) -> DeepLinear:
    std = 0.5 / max(width, 3) ** 0.5  # products stay near 1 at every depth
    inits = [initial_layers(NormalInit(kind="normal", std=std), 21, depth, width, seed + s) for s in range(len(lrs))]
    layers = [torch.stack([i[j] for i in inits]).to(dtype) for j in range(depth)]
    return DeepLinear(layers, torch.tensor(lrs, dtype=dtype), wd, optimizer, kernel=kernel)


# Widths that are and are not a multiple of the kernel's 8 (float64) or 16 (float32) partial sums.
@pytest.mark.parametrize("depth,width", [(1, 1), (2, 1), (2, 9), (3, 16), (4, 20), (6, 3)])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_the_kernel_follows_the_torch_ops_trajectory_in_float64(fused: FusedKernel, depth: int, width: int, wd: float) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-4, 3e-4, 1e-3, 3e-3]
    ops = run_loop(model(depth, width, lrs, torch.float64, None, wd), X, y, 4.0, 300, 10)
    kern = run_loop(model(depth, width, lrs, torch.float64, fused, wd), X, y, 4.0, 300, 10, kernel=fused)
    assert torch.isfinite(ops.losses).all()
    assert torch.allclose(kern.losses, ops.losses, rtol=1e-12, atol=0)


def test_the_kernel_follows_the_torch_ops_trajectory_in_float32(fused: FusedKernel) -> None:
    X, y = problem(torch.float32)
    lrs = [1e-4, 1e-3, 3e-3, 1e-2]
    ops = run_loop(model(3, 20, lrs, torch.float32, None), X, y, 4.0, 300, 10)
    kern = run_loop(model(3, 20, lrs, torch.float32, fused), X, y, 4.0, 300, 10, kernel=fused)
    assert torch.allclose(kern.losses, ops.losses, rtol=1e-4, atol=0)


def test_the_kernels_numbers_do_not_depend_on_the_thread_count(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]  # an odd count: threads get unequal shares
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_loop(model(3, 20, lrs, torch.float64, fused), X, y, 4.0, 200, 20, kernel=fused)
        torch.set_num_threads(2)
        two = run_loop(model(3, 20, lrs, torch.float64, fused), X, y, 4.0, 200, 20, kernel=fused)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one.losses, two.losses)


def test_a_run_in_the_kernel_does_not_depend_on_its_batch(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    together = run_loop(model(3, 9, [1e-4, 1e-3, 3e-3], torch.float64, fused), X, y, 4.0, 200, 20, kernel=fused)
    alone = run_loop(model(3, 9, [1e-3], torch.float64, fused, seed=1), X, y, 4.0, 200, 20, kernel=fused)
    assert torch.equal(together.losses[1], alone.losses[0])


def test_a_diverging_run_in_the_kernel_is_frozen_and_the_others_go_on(fused: FusedKernel) -> None:
    X, y = problem(torch.float64)
    lrs = [1e-3, 50.0, 3e-3, 1e-4]
    kern = run_loop(model(2, 9, lrs, torch.float64, fused), X, y, 4.0, 200, 10, kernel=fused)
    ops = run_loop(model(2, 9, lrs, torch.float64, None), X, y, 4.0, 200, 10)
    assert kern.diverged_at == ops.diverged_at and kern.diverged_at[1] is not None
    others = [0, 2, 3]
    assert torch.allclose(kern.losses[others], ops.losses[others], rtol=1e-12, atol=0)


def test_after_a_divergence_the_data_pass_takes_only_the_live_runs_and_their_bits_do_not_change(
    fused: FusedKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = problem(torch.float64)
    alone = run_loop(model(2, 9, [1e-3], torch.float64, fused), X, y, 4.0, 200, 10, kernel=fused)
    rows_per_pass: list[int] = []
    make_objective = loop.objective_for

    def spied(*args: object, **kwargs: object) -> loop.Objective:
        objective = make_objective(*args, **kwargs)  # type: ignore[arg-type]

        def counted(w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
            rows_per_pass.append(w.shape[0])
            return objective(w, with_loss)

        return counted  # type: ignore[return-value]

    monkeypatch.setattr(loop, "objective_for", spied)
    beside = run_loop(model(2, 9, [1e-3, 50.0], torch.float64, fused), X, y, 4.0, 200, 10, kernel=fused)
    assert beside.diverged_at[1] is not None and beside.diverged_at[0] is None
    assert rows_per_pass[0] == 2 and rows_per_pass[-1] == 1 and rows_per_pass.count(1) >= 200 - beside.diverged_at[1]
    assert torch.isnan(beside.losses[1, -1])
    assert torch.equal(beside.losses[0], alone.losses[0])


# --- AdaGrad, AdaDelta and Adam in the kernel (fused_step.c's adaptive_step, optim.h's rules) ----

ADAPTIVE = [
    AdaGrad(kind="adagrad"),
    AdaGrad(kind="adagrad", initial_accumulator=0.1),  # TensorFlow 1's default
    AdaDelta(kind="adadelta"),
    AdaDelta(kind="adadelta", rho=0.95, eps=1e-8),
    Adam(kind="adam"),
    Adam(kind="adam", beta1=0.6),  # lerp's other branch (weight ≥ 0.5)
    Adam(kind="adam", eps_hat=True),  # TensorFlow 1's form
    AdaGrad(kind="adagrad", eps=0.0, initial_accumulator=0.1),  # TensorFlow 1's: no eps at all
]
ADAPTIVE_LRS = {"adagrad": [1e-3, 3e-3, 1e-2], "adadelta": [0.01, 0.03, 0.05], "adam": [1e-4, 3e-4, 1e-3]}  # well-behaved


def adaptive_gap(optimizer: Optimizer, fused: FusedKernel, depth: int, width: int, wd: float) -> float:
    """The largest relative difference between the kernel's and the torch ops' 300-step curves."""
    X, y = problem(torch.float64)
    lrs = ADAPTIVE_LRS[optimizer.kind]
    ops = run_loop(model(depth, width, lrs, torch.float64, None, wd, optimizer=optimizer), X, y, 4.0, 300, 10)
    kern = run_loop(model(depth, width, lrs, torch.float64, fused, wd, optimizer=optimizer), X, y, 4.0, 300, 10, kernel=fused)
    assert torch.isfinite(ops.losses).all() and bool((ops.losses[:, -1] < 0.98 * ops.losses[:, 0]).all())  # they move
    return float(((kern.losses - ops.losses).abs() / ops.losses).max())


@pytest.mark.parametrize("optimizer", ADAPTIVE, ids=lambda o: repr(o))
@pytest.mark.parametrize("depth,width,wd", [(1, 1, 0.0), (3, 9, 0.0), (4, 20, 0.05)])
def test_the_adaptive_kernels_follow_the_torch_ops_trajectory(
    fused: FusedKernel, optimizer: Optimizer, depth: int, width: int, wd: float
) -> None:
    assert model(depth, width, [1e-3], torch.float64, fused, optimizer=optimizer).uses_kernel
    assert adaptive_gap(optimizer, fused, depth, width, wd) <= 1e-12


@pytest.mark.parametrize("optimizer", ADAPTIVE[::2], ids=lambda o: o.kind)
def test_the_adaptive_parity_check_sees_a_perturbed_update(
    fused: FusedKernel, optimizer: Optimizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parity above has teeth: a kernel whose update is off by 1e-10 of the new weights fails it."""
    step = BoundStep.adaptive_step

    def perturbed(self: BoundStep, g: torch.Tensor, constants: list[float]) -> None:
        step(self, g, constants)
        self._keep[0][0].mul_(1.0 + 1e-10)
        self.forward()

    monkeypatch.setattr(BoundStep, "adaptive_step", perturbed)
    assert adaptive_gap(optimizer, fused, 3, 9, 0.0) > 1e-12


@pytest.mark.parametrize("optimizer", ADAPTIVE[::2], ids=lambda o: o.kind)
def test_the_adaptive_kernels_numbers_do_not_depend_on_threads_or_batch(fused: FusedKernel, optimizer: Optimizer) -> None:
    X, y = problem(torch.float64)
    lrs = [*ADAPTIVE_LRS[optimizer.kind], 10 * ADAPTIVE_LRS[optimizer.kind][-1], 1e-5]  # odd count; one may diverge
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_loop(model(3, 20, lrs, torch.float64, fused, optimizer=optimizer), X, y, 4.0, 200, 20, kernel=fused)
        torch.set_num_threads(2)
        two = run_loop(model(3, 20, lrs, torch.float64, fused, optimizer=optimizer), X, y, 4.0, 200, 20, kernel=fused)
    finally:
        torch.set_num_threads(threads)
    alone = run_loop(model(3, 20, lrs[1:2], torch.float64, fused, seed=1, optimizer=optimizer), X, y, 4.0, 200, 20, kernel=fused)
    assert torch.equal(one.losses.nan_to_num(-1.0), two.losses.nan_to_num(-1.0))
    assert torch.equal(one.losses[1], alone.losses[0])


def test_the_adaptive_kernels_follow_the_torch_ops_in_float32(fused: FusedKernel) -> None:
    X, y = problem(torch.float32)
    for optimizer in ADAPTIVE[::2]:
        lrs = ADAPTIVE_LRS[optimizer.kind]
        ops = run_loop(model(3, 20, lrs, torch.float32, None, optimizer=optimizer), X, y, 4.0, 300, 10)
        kern = run_loop(model(3, 20, lrs, torch.float32, fused, optimizer=optimizer), X, y, 4.0, 300, 10, kernel=fused)
        assert torch.allclose(kern.losses, ops.losses, rtol=1e-4, atol=0), optimizer.kind


def test_the_kernel_is_not_used_where_it_does_not_apply(fused: FusedKernel) -> None:
    from overparam.engine.optim import parse_optimizer

    adam = parse_optimizer({"kind": "adam"})
    layers = [W.to(torch.float64) for W in model(2, 3, [1e-3], torch.float64, None).layers]
    assert DeepLinear(layers, torch.tensor([1e-3], dtype=torch.float64), 0.0, adam, kernel=None).uses_kernel is False
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


# --- What the kernels own: every sum of every model kind, the same on every CPU ------------------


def trained_by(kernel: FusedKernel | None, runs: list, dataset, monkeypatch: pytest.MonkeyPatch) -> list:
    """Every run trained in one program with `kernel` (None: torch ops)."""
    import overparam.sweep.train

    monkeypatch.setattr(overparam.sweep.train, "kernel_for", lambda device: kernel)
    return [r for group in grouped(runs) for r in train_group(group, dataset, "cpu", lambda _: None)]


def same_bits(a: list, b: list) -> list[str]:
    """The runs (model lr seed) whose curves or W_e differ in any bit."""
    return [
        f"{x.config['model']['kind']} lr={x.config['lr']} seed={x.config['seed']}"
        for x, y in zip(a, b)
        if not (torch.equal(x.losses, y.losses) and torch.equal(x.end_to_end, y.end_to_end))
    ]


@pytest.fixture(scope="module")
def generic_kernel(tmp_path_factory: pytest.TempPathFactory) -> FusedKernel:
    """The kernels built for the machine's baseline instruction set (no -march=native: SSE2 on
    x86-64) — what the same source computes on a CPU without this one's vector units."""
    if shutil.which(compiler()) is None:
        pytest.skip("no C compiler on this machine: the engine uses torch ops only")
    path = tmp_path_factory.mktemp("generic") / "kernels.so"
    build(compiler(), path, (["-fopenmp"],))
    return load_kernel(path)


@pytest.mark.parametrize("p", [4.0, 3.0, 2.0])
def test_every_model_kind_gives_the_same_bits_on_another_instruction_set(
    fused: FusedKernel, generic_kernel: FusedKernel, tmp_path: Path, p: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, dataset = planned_runs_of_every_kind(tmp_path, p, {"kind": "synthetic", "n": 300, "d": 17})
    runs += planned_runs_of_every_kind(tmp_path, p, {"kind": "uci_gas", "gas_class": 1, "standardize": True})[0][::7]
    native = trained_by(fused, runs, dataset, monkeypatch)
    assert same_bits(native, trained_by(generic_kernel, runs, dataset, monkeypatch)) == []


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "uci_gas"])
def test_the_kernels_numbers_do_not_depend_on_torchs_instruction_set_or_threads(
    fused: FusedKernel, tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    """torch's own element-wise kernels round differently without AVX2 (fused multiply-adds), and
    MKL's products sum in another order on AVX-512; nothing of a run's arithmetic, from its data on,
    may go through them. A second process with torch and MKL forced to their baseline code paths
    and one thread stores the same keys and bits, on every data source and model kind."""
    check = {"kind": "bound", "metric": "final_loss", "model": "depth-1", "lo": 0.0}
    data = {"kind": "uci_gas", "path": str(request.getfixturevalue("uci_dir"))} if source == "uci_gas" else small_spec()["data"]
    spec = write_spec(tmp_path, small_spec(models=EVERY_KIND_MODELS, data=data, tune={"lr": [1e-3, 3e-3]}, checks=[check]))
    stores = {}
    for name, env in (
        ("default", {}),
        ("baseline", {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OMP_NUM_THREADS": "1"}),
    ):
        stores[name] = tmp_path / f"{name}.sqlite"
        command = [sys.executable, "-m", "overparam", "run", str(spec), "--store", str(stores[name]), "--reports", str(tmp_path / name)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
        assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a verdict, not a fault: the bits are what is compared
    bits = {name: {key: struct.pack(f"{len(v)}d", *v) for key, v in all_losses(store).items()} for name, store in stores.items()}
    assert bits["default"] == bits["baseline"]  # as bytes: a diverged run's NaNs are equal bits, never equal floats


def test_the_data_pass_owns_its_sums(fused: FusedKernel) -> None:
    """The kernel's ℓp pass against torch's (BLAS) within rounding, for p = 2 (moments), 3, 4 and a
    non-integer p, and bit-identical for a run alone, in a batch, and on 1 or 2 threads."""
    from overparam.engine.loop import DataPass, Gram

    X, y = problem(torch.float64, n=203, d=37)
    w = 0.3 * torch.randn(9, 37, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for p in (2.0, 3.0, 4.0, 6.5):
        reference = Gram(X, y) if p == 2.0 else DataPass(X, y, p)
        loss, grad = fused.objective(X, y, p)(w, True)
        want_loss, want_grad = reference(w, True)
        assert torch.allclose(loss, want_loss, rtol=1e-13, atol=0)
        assert torch.allclose(grad, want_grad, rtol=1e-11, atol=1e-13 * float(want_grad.abs().max()))
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = fused.objective(X, y, p)(w, True)
            torch.set_num_threads(2)
            two = fused.objective(X, y, p)(w, True)
        finally:
            torch.set_num_threads(threads)
        alone = fused.objective(X, y, p)(w[4:5].clone(), True)
        assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
        assert torch.equal(alone[0][0], one[0][4]) and torch.equal(alone[1][0], one[1][4])
