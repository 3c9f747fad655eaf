"""The fused step kernel (fused_step.c): compiled with the machine's C compiler on first use,
cached, and called through ctypes. Its OpenMP threads are torch's (see the C file).

It does plain gradient descent on deep linear scalar-output networks on the CPU, in float32 or
float64: what the paper's sweeps train. Without a C compiler `fused_kernel()` is None and the
engine does the same maths in torch ops (bench/engine_speed.py measures both).
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

import torch

SOURCE = Path(__file__).with_name("fused_step.c")
# -ffp-contract=off: no fused multiply-adds, so the numbers do not depend on the instruction set.
FLAGS = ["-O3", "-ffp-contract=off", "-shared", "-fPIC"]
SUFFIXES = {torch.float64: "f64", torch.float32: "f32"}


class FusedKernel:
    """The compiled library."""

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.library = library
        self.path = path

    def supports(self, layers: list[torch.Tensor]) -> bool:
        return all(W.device.type == "cpu" and W.dtype in SUFFIXES and W.is_contiguous() and W.dtype == layers[0].dtype for W in layers)

    def bind(self, layers: list[torch.Tensor], scale: torch.Tensor, decay: torch.Tensor | None) -> BoundStep:
        return BoundStep(self, layers, scale, decay)


class BoundStep:
    """The kernel bound to one DeepLinear's tensors: the pointers are fixed, as every update is
    in place. Keeps A[j] = W_N⋯W_{j+1} for every j, so A[0] is W_e."""

    def __init__(self, kernel: FusedKernel, layers: list[torch.Tensor], scale: torch.Tensor, decay: torch.Tensor | None) -> None:
        runs, dtype = layers[0].shape[0], layers[0].dtype
        dims = [layers[0].shape[2]] + [W.shape[1] for W in layers]
        self.kernel, self.runs, self.depth = kernel, runs, len(layers)
        self.above = [torch.zeros(runs, h, dtype=dtype) for h in dims[:-1]] + [torch.ones(runs, 1, dtype=dtype)]
        assert scale.is_contiguous(), "scale must be a view the model edits in place (freeze)"
        self.scale = scale.reshape(runs)
        self.decay = decay.reshape(runs).contiguous() if decay is not None else None
        self.work = torch.empty(runs, 2 * max(dims), dtype=dtype)
        self._keep = layers  # the pointers below must stay valid
        suffix = SUFFIXES[dtype]
        self._step = getattr(kernel.library, f"step_{suffix}")
        self._forward = getattr(kernel.library, f"forward_{suffix}")
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

    def step(self, g: torch.Tensor) -> None:
        """W_j ← (1 − ηλ)W_j − η a_jᵀ c_j for every layer (DeepLinear's notation), then A on the
        new weights."""
        g = g.contiguous()
        if g.shape != self.above[0].shape or g.dtype != self.above[0].dtype:
            raise ValueError(f"the gradient must be {tuple(self.above[0].shape)} {self.above[0].dtype}, got {tuple(g.shape)} {g.dtype}")
        self._step(
            self.runs,
            self.depth,
            self._dims,
            self._layers,
            self._above,
            ctypes.c_void_p(g.data_ptr()),
            self._scale,
            self._decay,
            self._work,
        )


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
        path = _compiled(cc)
        library = ctypes.CDLL(str(path))
    except (OSError, subprocess.SubprocessError) as error:
        print(f"overparam: could not build the fused kernel ({error}); training uses torch ops", file=sys.stderr)
        return None
    for suffix in SUFFIXES.values():
        getattr(library, f"step_{suffix}").argtypes = [ctypes.c_long, ctypes.c_long, *[ctypes.c_void_p] * 7]
        getattr(library, f"forward_{suffix}").argtypes = [ctypes.c_long, ctypes.c_long, *[ctypes.c_void_p] * 3]
        getattr(library, f"step_{suffix}").restype = getattr(library, f"forward_{suffix}").restype = None
    return FusedKernel(library, path)


def _compiled(compiler: str) -> Path:
    """The shared library, built once per source, compiler and CPU, then reused from the cache."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    identity = SOURCE.read_bytes() + repr((FLAGS, version, platform.machine(), _cpu_flags())).encode()
    name = f"fused_step-{hashlib.sha256(identity).hexdigest()[:16]}.so"
    for folder in (_cache_folder(), Path(tempfile.gettempdir()) / "overparam"):
        path = folder / name
        if path.exists():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f"{name}.{os.getpid()}.partial"  # processes may build at once
            _build(compiler, partial)
            os.replace(partial, path)
            return path
        except OSError:  # not writable (read-only home, say): the next folder
            continue
    raise OSError("no writable cache folder")


def _build(compiler: str, output: Path) -> None:
    # Not every compiler knows -march=native or -fopenmp; without OpenMP the kernel runs on one thread.
    for extra in (["-fopenmp", "-march=native"], ["-fopenmp"], ["-march=native"], []):
        result = subprocess.run([compiler, *FLAGS, *extra, str(SOURCE), "-o", str(output)], capture_output=True, text=True, timeout=120)
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
