"""Checkpoints inside a group of runs: a group (up to 64 runs trained as one program) can take
minutes to hours, and the run store only receives it whole. Every `every_s` seconds, at a step
boundary, the step loop saves its whole state (weights, optimizer state, learning rates of frozen
runs, losses recorded so far, step) to one file, written to a temporary name and renamed. A rerun
resumes from it, bit for bit: the state is all the loop has, and the kernels are deterministic.

Ctrl-C (SIGINT), SIGTERM and SIGHUP during a group are deferred to the next step boundary, where
a checkpoint is saved before the interrupt goes on, so they lose nothing; a kill (SIGKILL) loses at
most `every_s`.
Files live beside the run store (`<store>.checkpoints/`), named by the group's run keys, and are
deleted once the group is in the store. Each carries the sha256 of its state, checked before a
resume: a damaged one is set aside and refused (exit 3), never resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overparam.errors import EnvironmentFault

DEFAULT_EVERY_S = 180.0
MAGIC = b"overparam checkpoint sha256 "  # then the payload's hex digest, a newline and the payload


STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, and what schedulers, `timeout` and a closed terminal send


class Interrupted(KeyboardInterrupt):
    """A stopping signal (STOPPING) outside a group in training; the CLI exits 128 + `signum`."""

    def __init__(self, signum: int = signal.SIGINT, message: str = "") -> None:
        super().__init__(message or signal.Signals(signum).name)
        self.signum = signum


class CheckpointedInterrupt(Interrupted):
    """A stopping signal, after the group in training was checkpointed; `kept` says where."""

    def __init__(self, kept: str, signum: int = signal.SIGINT) -> None:
        super().__init__(signum, kept)
        self.kept = kept

    def __reduce__(self) -> tuple[Any, ...]:  # from a worker process to the driver
        return (CheckpointedInterrupt, (self.kept, self.signum))


@contextlib.contextmanager
def stopping_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Interrupted as Ctrl-C raises KeyboardInterrupt, so that they stop a
    command the same way: at a checkpoint inside a group (deferring_interrupts), with one line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOPPING[1:]}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class Checkpoints:
    """Where and how often groups are checkpointed (picklable: worker processes get a copy)."""

    folder: Path
    every_s: float = DEFAULT_EVERY_S

    @staticmethod
    def beside(store: Path, every_s: float = DEFAULT_EVERY_S) -> Checkpoints:
        return Checkpoints(store.with_name(store.name + ".checkpoints"), every_s)

    def for_group(self, keys: list[str]) -> GroupCheckpoint:
        return GroupCheckpoint(self._path(keys), keys, self.every_s)

    def discard(self, keys: list[str]) -> None:
        self._path(keys).unlink(missing_ok=True)

    def _path(self, keys: list[str]) -> Path:
        return self.folder / (hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32] + ".pt")


class GroupCheckpoint:
    """One group's checkpoint file, and the clock that says when the next one is due."""

    def __init__(self, path: Path, keys: list[str], every_s: float) -> None:
        self.path, self.keys, self.every_s = path, keys, every_s
        self._last = time.monotonic()
        self.interrupted = False
        self.signum = int(signal.SIGINT)  # the stopping signal that interrupted it
        self.resumed_at = 0  # the step load() found saved: done in an earlier process, not this one

    def due(self) -> bool:
        return self.interrupted or time.monotonic() - self._last >= self.every_s

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none. The file carries the sha256 of its state
        (torch checks no CRC of its zip: flipped bytes in a tensor load silently); a file that does
        not match it, or is not a checkpoint of these runs, is set aside as `*.damaged` and is an
        EnvironmentFault (exit 3): never a silent resume. The rerun trains the group from the start."""
        import torch  # here, not at the top: the CLI imports this module for its --help

        if not self.path.exists():
            return None
        try:
            if not self.path.is_file():  # a FIFO or a device would hang the read
                raise ValueError("not a regular file")
            blob = self.path.read_bytes()
            magic, digest, payload = blob[: len(MAGIC)], blob[len(MAGIC) : len(MAGIC) + 64], blob[len(MAGIC) + 65 :]
            if magic != MAGIC or digest != hashlib.sha256(payload).hexdigest().encode():
                raise ValueError("its contents do not match their digest")
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("keys") != self.keys:
                raise ValueError("it belongs to other runs")
        except Exception as error:  # any damage: torch.load raises many kinds
            aside = self.path.with_name(self.path.name + ".damaged")
            os.replace(self.path, aside)
            raise EnvironmentFault(
                f"{self.path}: checkpoint damaged ({error}); set aside as {aside.name}: rerun to train its {len(self.keys)} runs from the start"
            ) from error
        self.resumed_at = int(state["step"])
        print(f"overparam: {len(self.keys)} runs resume from their checkpoint at step {self.resumed_at:,}", file=sys.stderr)
        return state

    def save(self, state: dict[str, Any]) -> None:
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({**state, "keys": self.keys}, buffer)
        payload = buffer.getvalue()
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        with partial.open("wb") as file:
            file.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self.path)
        self._last = time.monotonic()

    @contextlib.contextmanager
    def deferring_interrupts(self) -> Iterator[None]:
        """A stopping signal (SIGINT, SIGTERM, SIGHUP) sets `interrupted` instead of raising
        mid-step (only in the main thread, the only one that receives signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def defer(signum: int, frame: object) -> None:
            self.interrupted, self.signum = True, signum

        previous = {signum: signal.signal(signum, defer) for signum in STOPPING}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
