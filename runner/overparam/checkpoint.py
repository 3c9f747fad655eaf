"""Checkpoints inside a group of runs: a group (up to 64 runs trained as one program) can take
minutes to hours, and the run store only receives it whole. Every `every_s` seconds, at a step
boundary, the step loop saves its whole state (weights, optimizer state, learning rates of frozen
runs, losses recorded so far, step) to one file, written to a temporary name and renamed. A rerun
resumes from it, bit for bit: the state is all the loop has, and the kernels are deterministic.

Ctrl-C (SIGINT) during a group is deferred to the next step boundary, where a checkpoint is saved
before the interrupt goes on, so an interrupt loses nothing; a kill loses at most `every_s`.
Files live beside the run store (`<store>.checkpoints/`), named by the group's run keys, and are
deleted once the group is in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_EVERY_S = 180.0


class CheckpointedInterrupt(KeyboardInterrupt):
    """Ctrl-C, after the group in training was checkpointed; `kept` says where."""

    def __init__(self, kept: str) -> None:
        super().__init__(kept)
        self.kept = kept


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
        self.resumed_at = 0  # the step load() found saved: done in an earlier process, not this one

    def due(self) -> bool:
        return self.interrupted or time.monotonic() - self._last >= self.every_s

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none; an unreadable or foreign file is set aside
        with one line on stderr (the group then trains from the start)."""
        import torch  # here, not at the top: the CLI imports this module for its --help

        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("keys") != self.keys:
                raise ValueError("it belongs to other runs")
        except Exception as error:  # any damage: torch.load raises many kinds
            print(f"overparam: {self.path}: checkpoint unreadable ({error}); training its group from the start", file=sys.stderr)
            self.path.unlink(missing_ok=True)
            return None
        self.resumed_at = int(state["step"])
        print(f"overparam: {len(self.keys)} runs resume from their checkpoint at step {self.resumed_at:,}", file=sys.stderr)
        return state

    def save(self, state: dict[str, Any]) -> None:
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        torch.save({**state, "keys": self.keys}, partial)
        os.replace(partial, self.path)
        self._last = time.monotonic()

    @contextlib.contextmanager
    def deferring_interrupts(self) -> Iterator[None]:
        """SIGINT sets `interrupted` instead of raising mid-step (only in the main thread, the
        only one that receives signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def defer(signum: int, frame: object) -> None:
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, defer)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
