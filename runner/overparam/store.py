"""The run store: one SQLite row per finished run, keyed by the run's hash.

Writes are single transactions, so a crash never leaves half a run; WAL mode lets several
processes read and write one store at once.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    losses BLOB NOT NULL,        -- zlib-compressed float64 losses at the recorded steps
    diverged_at INTEGER,         -- first recorded step with a non-finite loss, or NULL
    wall_s REAL NOT NULL,        -- this run's share of its batch's wall time
    device TEXT NOT NULL,
    created TEXT NOT NULL,
    end_to_end BLOB,             -- zlib-compressed float64 W_e (T × d) at the recorded steps, or NULL
    penalty BLOB                 -- the convnet's L2 penalty term (T,) beside its cross-entropy, or NULL
)
"""


@dataclass(frozen=True)
class StoredRun:
    key: str
    config: dict[str, Any]
    losses: torch.Tensor  # (T,) float64
    diverged_at: int | None
    wall_s: float
    device: str
    end_to_end: torch.Tensor | None = None  # (T, d) float64, when the spec records it
    penalty: torch.Tensor | None = None  # (T,) float64, convnet runs only


class RunStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "penalty" not in columns:  # a store written before convnet runs existed
            self._db.execute("ALTER TABLE runs ADD COLUMN penalty BLOB")

    def get(self, keys: list[str]) -> dict[str, StoredRun]:
        found: dict[str, StoredRun] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            columns = "key, config, losses, diverged_at, wall_s, device, end_to_end, penalty"
            rows = self._db.execute(f"SELECT {columns} FROM runs WHERE key IN ({marks})", chunk)
            for key, config, blob, diverged_at, wall_s, device, vectors, penalty in rows:
                losses = _unpacked(blob)
                end_to_end = _unpacked(vectors).view(len(losses), -1) if vectors is not None else None
                penalty_curve = _unpacked(penalty) if penalty is not None else None
                found[key] = StoredRun(key, json.loads(config), losses, diverged_at, wall_s, device, end_to_end, penalty_curve)
        return found

    def put(self, runs: list[StoredRun]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [
            (
                r.key,
                json.dumps(r.config, sort_keys=True),
                _packed(r.losses),
                r.diverged_at,
                r.wall_s,
                r.device,
                now,
                _packed(r.end_to_end),
                _packed(r.penalty),
            )
            for r in runs
        ]
        with self._db:  # commits the batch as one transaction, or rolls it back
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO runs (key, config, losses, diverged_at, wall_s, device, created, end_to_end, penalty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        self._db.close()


def _packed(values: torch.Tensor | None) -> bytes | None:
    return None if values is None else zlib.compress(values.to(torch.float64).contiguous().numpy().tobytes())


def _unpacked(blob: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(zlib.decompress(blob)), dtype=torch.float64)
