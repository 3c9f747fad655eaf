"""The CPU kernels: compiled with the machine's C compiler on first use, cached, and called
through ctypes. Their OpenMP threads are torch's (see fused_step.c).

fused_step.c does a step of deep linear scalar-output networks, by plain gradient descent or by
AdaGrad, AdaDelta or Adam (their rules in optim.h), data_pass.c the pass over the data (ℓp through
X, ℓ2 through its moments) for every model, end_to_end.c the end-to-end rule (12) and the warm-up
form, in float32 or float64. All of them sum in a fixed order, so a run's numbers depend neither on the
CPU's vendor or instruction set nor on the thread count or the runs beside it. Without a C
compiler `fused_kernel()` is None and the engine does the same maths in torch ops
(bench/engine_speed.py measures both).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

SOURCES = [Path(__file__).with_name(name) for name in ("fused_step.c", "data_pass.c", "end_to_end.c")]
HEADERS = [Path(__file__).with_name(name) for name in ("lanes.h", "optim.h")]  # included by the sources: part of what the cache keys on
# -ffp-contract=off: no fused multiply-adds, so the numbers do not depend on the instruction set.
# -fno-math-errno: sqrt need not set errno, so the optimizers' loops vectorise (vsqrtpd rounds
# exactly as sqrt does: the same bits, ≈2× faster).
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]
SUFFIXES = {torch.float64: "f64", torch.float32: "f32"}
RULES = {"adagrad": 1, "adadelta": 2, "adam": 3, "adam_hat": 4}  # optim.h's enum


class FusedKernel:
    """The compiled library."""

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.library = library
        self.path = path

    def supports(self, layers: list[torch.Tensor]) -> bool:
        return all(W.device.type == "cpu" and W.dtype in SUFFIXES and W.is_contiguous() and W.dtype == layers[0].dtype for W in layers)

    def bind(self, layers: list[torch.Tensor], scale: torch.Tensor, decay: torch.Tensor | None) -> BoundStep:
        return BoundStep(self, layers, scale, decay)

    def flat(self, tensors: list[torch.Tensor]) -> FlatStep | None:
        """The depth-1 rules bound to a model's tensors, or None where the kernel does not take them."""
        return FlatStep(self, tensors[0]) if self.supports(tensors) else None

    def objective(self, X: torch.Tensor, y: torch.Tensor, p: float) -> DataPassKernel | GramKernel | None:
        """ℓp and its gradient on this data in the kernel (the loop's Objective), or None where
        the kernel does not take this data (not on the CPU, or another dtype)."""
        if X.device.type != "cpu" or X.dtype not in SUFFIXES or y.dtype != X.dtype:
            return None
        X, y = X.contiguous(), y.contiguous()
        if p == 2.0 and X.shape[0] > X.shape[1]:
            return GramKernel(self, X, y)
        return DataPassKernel(self, X, y, p)


class FlatStep:
    """end_to_end.c's rules for depth-1 models, on a model's own (R, d) tensors, in place."""

    def __init__(self, kernel: FusedKernel, w: torch.Tensor) -> None:
        suffix = SUFFIXES[w.dtype]
        self._rule12 = getattr(kernel.library, f"rule12_step_{suffix}")
        self._warmup = getattr(kernel.library, f"warmup_step_{suffix}")

    def rule12(self, w: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, decay: torch.Tensor, depth: int) -> None:
        g = g.contiguous()
        self._rule12(w.shape[0], w.shape[1], _ptr(w), _ptr(g), _ptr(lr), _ptr(decay), depth)

    def warmup(self, w: torch.Tensor, omega: torch.Tensor, g: torch.Tensor, lr: torch.Tensor) -> None:
        g = g.contiguous()
        self._warmup(w.shape[0], w.shape[1], _ptr(w), _ptr(omega), _ptr(g), _ptr(lr))


class DataPassKernel:
    """data_pass.c's lp_pass: r = Xw − y, L = mean |r|^p, ∇L¹ = (p/n) Xᵀ(|r|^{p−1} sign r)."""

    def __init__(self, kernel: FusedKernel, X: torch.Tensor, y: torch.Tensor, p: float) -> None:
        self.X, self.y, self.p = X, y, p
        self._pass = getattr(kernel.library, f"lp_pass_{SUFFIXES[X.dtype]}")
        self._scale = _real(X.dtype)(p / X.shape[0])
        self._scratch = torch.empty(0, dtype=X.dtype)  # 2·BLOCK·d per block of 4 runs (data_pass.c)

    def __call__(self, w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        w = w.contiguous()
        runs, (n, d) = w.shape[0], self.X.shape
        grad = torch.empty(runs, d, dtype=w.dtype)
        loss = torch.empty(runs, dtype=torch.float64)
        if self._scratch.numel() < (runs + 3) // 4 * 8 * d:
            self._scratch = torch.empty((runs + 3) // 4 * 8 * d, dtype=w.dtype)
        args = (
            _ptr(self.X),
            _ptr(self.y),
            _ptr(w),
            ctypes.c_double(self.p),
            self._scale,
            int(with_loss),
            _ptr(grad),
            _ptr(loss),
            _ptr(self._scratch),
        )
        self._pass(runs, n, d, *args)
        return (loss if with_loss else None), grad  # the loss in float64 whatever the dtype


class GramKernel:
    """data_pass.c's gram_pass: ℓ2 through the moments G = XᵀX/n, b = Xᵀy/n, c = yᵀy/n, computed
    once (moments), so a step is O(d²) per run instead of O(nd)."""

    def __init__(self, kernel: FusedKernel, X: torch.Tensor, y: torch.Tensor) -> None:
        suffix = SUFFIXES[X.dtype]
        n, d = X.shape
        self.G, self.b, c = torch.empty(d, d, dtype=X.dtype), torch.empty(d, dtype=X.dtype), torch.empty(1, dtype=X.dtype)
        getattr(kernel.library, f"moments_{suffix}")(n, d, _ptr(X), _ptr(y), _ptr(self.G), _ptr(self.b), _ptr(c))
        self.c = _real(X.dtype)(float(c))
        self._pass = getattr(kernel.library, f"gram_pass_{suffix}")

    def __call__(self, w: torch.Tensor, with_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        w = w.contiguous()
        runs, d = w.shape
        grad = torch.empty(runs, d, dtype=w.dtype)
        loss = torch.empty(runs, dtype=torch.float64)
        self._pass(runs, d, _ptr(self.G), _ptr(self.b), self.c, _ptr(w), int(with_loss), _ptr(grad), _ptr(loss))
        return (loss if with_loss else None), grad  # the loss in float64 whatever the dtype


def _real(dtype: torch.dtype) -> type[ctypes.c_double] | type[ctypes.c_float]:
    """The C type of a scalar passed by value to a kernel of this dtype."""
    return ctypes.c_double if dtype == torch.float64 else ctypes.c_float


def _ptr(tensor: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(tensor.data_ptr())


class BoundStep:
    """The kernel bound to one DeepLinear's tensors: the pointers are fixed, as every update is
    in place. Keeps A[j] = W_N⋯W_{j+1} for every j, so A[0] is W_e."""

    def __init__(self, kernel: FusedKernel, layers: list[torch.Tensor], scale: torch.Tensor, decay: torch.Tensor | None) -> None:
        runs, dtype = layers[0].shape[0], layers[0].dtype
        dims = [layers[0].shape[2]] + [W.shape[1] for W in layers]
        self.kernel, self.runs, self.depth = kernel, runs, len(layers)
        self.above = [torch.zeros(runs, h, dtype=dtype) for h in dims[:-1]] + [torch.ones(runs, 1, dtype=dtype)]
        assert scale.is_contiguous(), "scale must be a view the model edits in place (freeze)"
        if scale.dtype != dtype or (decay is not None and decay.dtype != dtype):
            raise ValueError(f"the learning rates must be {dtype} like the layers, got {scale.dtype}")
        self.scale = scale.reshape(runs)
        self.decay = decay.reshape(runs).contiguous() if decay is not None else None
        self.work = torch.empty(runs, 2 * max(dims), dtype=dtype)
        self._keep = [layers]  # the pointers below must stay valid
        suffix = SUFFIXES[dtype]
        self._step = getattr(kernel.library, f"step_{suffix}")
        self._forward = getattr(kernel.library, f"forward_{suffix}")
        self._adaptive = getattr(kernel.library, f"adaptive_step_{suffix}")
        self._rule: tuple[int, ctypes.c_void_p, Any, Any] | None = None
        self._dims = (ctypes.c_long * len(dims))(*dims)
        self._layers = (ctypes.c_void_p * len(layers))(*[W.data_ptr() for W in layers])
        self._above = (ctypes.c_void_p * len(self.above))(*[a.data_ptr() for a in self.above])
        self._scale = ctypes.c_void_p(self.scale.data_ptr())
        self._decay = ctypes.c_void_p(self.decay.data_ptr()) if self.decay is not None else None
        self._work = ctypes.c_void_p(self.work.data_ptr())
        self.forward()

    @property
    def end_to_end(self) -> torch.Tensor:
        return self.above[0]

    def forward(self) -> None:
        """Recompute every A[j] from the layers (after they were changed from outside)."""
        self._forward(self.runs, self.depth, self._dims, self._layers, self._above)

    def bind_rule(self, rule: str, lr: torch.Tensor, moments: list[list[torch.Tensor]]) -> None:
        """Train with optim.h's `rule` instead of plain GD: `lr` (R, …) one per run, `moments[j]`
        the rule's state tensors of layer j (edited in place by the kernel, and by nobody else)."""
        tensors = [lr, *[m for layer in moments for m in layer]]
        if not all(t.dtype == self.work.dtype and t.is_contiguous() for t in tensors) or lr.numel() != self.runs:
            raise ValueError(f"the learning rates and moments must be contiguous {self.work.dtype}, one lr per run")
        first = (ctypes.c_void_p * self.depth)(*[layer[0].data_ptr() for layer in moments])
        second = (ctypes.c_void_p * self.depth)(*[layer[1].data_ptr() for layer in moments]) if len(moments[0]) > 1 else None
        self._keep.append(tensors)
        self._rule = (RULES[rule], ctypes.c_void_p(lr.data_ptr()), first, second)

    def adaptive_step(self, g: torch.Tensor, constants: list[float]) -> None:
        """One step of the bound rule on every layer (optim.h: `constants` are λ and the rule's
        own, in its order), then A on the new weights."""
        assert self._rule is not None, "bind_rule first"
        g = self._checked(g)
        rule, lr, first, second = self._rule
        k = (ctypes.c_double * len(constants))(*constants)
        self._adaptive(*self._net(g), rule, lr, k, first, second, self._work)

    def step(self, g: torch.Tensor) -> None:
        """W_j ← (1 − ηλ)W_j − η a_jᵀ c_j for every layer (DeepLinear's notation), then A on the
        new weights."""
        g = self._checked(g)
        self._step(*self._net(g), self._scale, self._decay, self._work)

    def _net(self, g: torch.Tensor) -> tuple[Any, ...]:
        """The arguments every step kernel begins with: runs, depth, dims, layers, A and g."""
        return (self.runs, self.depth, self._dims, self._layers, self._above, ctypes.c_void_p(g.data_ptr()))

    def _checked(self, g: torch.Tensor) -> torch.Tensor:
        if g.shape != self.above[0].shape or g.dtype != self.above[0].dtype:
            raise ValueError(f"the gradient must be {tuple(self.above[0].shape)} {self.above[0].dtype}, got {tuple(g.shape)} {g.dtype}")
        return g.contiguous()


def kernel_for(device: str) -> FusedKernel | None:
    """What DeepLinear trains with on `device`: the kernel on the CPU (built there only), else None."""
    return fused_kernel() if device == "cpu" else None


def compiler() -> str:
    return os.environ.get("CC", "cc")


@functools.cache
def fused_kernel() -> FusedKernel | None:
    """The kernel for this process, or None (with one line on stderr) where it cannot be built."""
    cc = compiler()
    if shutil.which(cc) is None:
        print(f"overparam: no C compiler ({cc}) found; training uses torch ops, about 2x slower at width 100", file=sys.stderr)
        return None
    try:
        return load_kernel(_compiled(cc))
    except (OSError, subprocess.SubprocessError) as error:
        print(f"overparam: could not build the fused kernel ({error}); training uses torch ops", file=sys.stderr)
        return None


def load_kernel(path: Path) -> FusedKernel:
    """The kernels from a built library, with every function's C signature declared."""
    library = ctypes.CDLL(str(path))
    long, ptr = ctypes.c_long, ctypes.c_void_p
    for suffix, real in (("f64", ctypes.c_double), ("f32", ctypes.c_float)):
        signatures = {
            "step": [long, long, *[ptr] * 7],
            "forward": [long, long, *[ptr] * 3],
            "lp_pass": [long, long, long, ptr, ptr, ptr, ctypes.c_double, real, ctypes.c_int, ptr, ptr, ptr],
            "gram_pass": [long, long, ptr, ptr, real, ptr, ctypes.c_int, ptr, ptr],
            "moments": [long, long, *[ptr] * 5],
            "adaptive_step": [long, long, *[ptr] * 4, ctypes.c_int, *[ptr] * 5],
            "rule12_step": [long, long, *[ptr] * 4, long],
            "warmup_step": [long, long, *[ptr] * 4],
        }
        for name, argtypes in signatures.items():
            function = getattr(library, f"{name}_{suffix}")
            function.argtypes, function.restype = argtypes, None
    return FusedKernel(library, path)


def _compiled(compiler: str) -> Path:
    """The shared library, built once per source, compiler and CPU, then reused from the cache."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    identity = (
        b"".join(source.read_bytes() for source in SOURCES + HEADERS) + repr((FLAGS, version, platform.machine(), _cpu_flags())).encode()
    )
    name = f"kernels-{hashlib.sha256(identity).hexdigest()[:16]}.so"
    for folder in (_cache_folder(), Path(tempfile.gettempdir()) / "overparam"):
        path = folder / name
        if path.exists():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f"{name}.{os.getpid()}.partial"  # processes may build at once
            build(compiler, partial)
            os.replace(partial, path)
            return path
        except OSError:  # not writable (read-only home, say): the next folder
            continue
    raise OSError("no writable cache folder")


BUILDS: tuple[list[str], ...] = (["-fopenmp", "-march=native"], ["-fopenmp"], ["-march=native"], [])


def build(compiler: str, output: Path, builds: tuple[list[str], ...] = BUILDS) -> None:
    """Compile the kernels into `output` with the first set of extra flags that builds.
    Not every compiler knows -march=native or -fopenmp; without OpenMP the kernels run on one thread."""
    for extra in builds:
        result = subprocess.run(
            [compiler, *FLAGS, *extra, *map(str, SOURCES), "-o", str(output), "-lm"], capture_output=True, text=True, timeout=120
        )
        if result.returncode == 0:
            return
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    raise subprocess.SubprocessError(errors[0].strip() if errors else f"{compiler} exited with {result.returncode}")


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "overparam"


def _cpu_flags() -> str:
    """What -march=native compiled for: a cache shared between machines must not mix them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line for line in lines if line.startswith(("flags", "Features"))), "")
