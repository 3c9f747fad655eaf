"""The run store: one SQLite row per finished run, keyed by the run's hash.

Writes are single transactions, so a crash never leaves half a run; WAL mode lets several
processes read and write one store at once. A `meta` table names the file an overparam store
and its schema version, so another program's database is never written into; each run carries
a digest of its contents, so a row changed after it was written is refused, not reported.
Every SQLite or file-system failure becomes an EnvironmentFault naming the store (exit 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from overparam.errors import EnvironmentFault

SCHEMA_VERSION = "2"  # 2: meta table, per-run digest
META = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)
"""
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
    penalty BLOB,                -- the convnet's L2 penalty term (T,) beside its cross-entropy, or NULL
    digest TEXT                  -- sha256 of the row's contents (_digest)
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
    def __init__(self, path: Path, read_only: bool = False) -> None:
        """Open (or create) the store at `path`; `read_only` opens an existing one without writing a
        byte to it, so reporting from a committed store leaves the file as it was (beside a WAL-mode
        store SQLite may leave its -wal and -shm files). A file that is not an overparam store of
        this schema is refused before anything is written to it."""
        self.path = path
        with self._faults("open"):
            if path.exists() and not path.is_file():
                raise EnvironmentFault(f"{path}: not a regular file; pass --store a file name")
            if path.is_file() and path.stat().st_size and _header(path) != b"SQLite format 3\x00":
                raise sqlite3.DatabaseError("file is not a database")  # SQLite would take a tiny file as empty
            if read_only:
                self._db = _read_only(path)
                self._admit(read_only=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            new = self._admit(read_only=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            if new:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(META)
                    self._db.execute(SCHEMA)
                    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('app', 'overparam'), ('schema', ?)", (SCHEMA_VERSION,))

    def _admit(self, read_only: bool) -> bool:
        """Whether the file is a new, empty store; a file that is not an overparam store of this
        schema (another program's, a newer or an older overparam's, one without digests) is closed
        untouched and refused in one line. Nothing is ever migrated: a store's rows are trusted only
        with the digests they were written with."""
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall()) if "meta" in tables else {}
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")} if "runs" in tables else set()
        problem = _refusal(tables, meta, read_only) or _missing_columns(columns, tables)
        if problem:
            self._db.close()
            raise EnvironmentFault(f"{self.path}: {problem}")
        return not tables

    @contextlib.contextmanager
    def _faults(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise EnvironmentFault(f"{self.path}: cannot {doing} the run store ({error}); {_advice(str(error))}") from error
        except OSError as error:
            raise EnvironmentFault(
                f"{self.path}: cannot {doing} the run store ({error.strerror or error}); {_advice(str(error))}"
            ) from error

    def get(self, keys: list[str]) -> dict[str, StoredRun]:
        """The stored runs among `keys`; a row whose contents no longer match its digest is an
        EnvironmentFault naming it (the store was changed outside overparam)."""
        found: dict[str, StoredRun] = {}
        with self._faults("read"):
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                columns = "key, config, losses, diverged_at, wall_s, device, end_to_end, penalty, digest"
                for row in self._db.execute(f"SELECT {columns} FROM runs WHERE key IN ({marks})", chunk):
                    found[row[0]] = self._checked(row)
        return found

    def _checked(self, row: tuple[Any, ...]) -> StoredRun:
        key, config, blob, diverged_at, wall_s, device, vectors, penalty, digest = row
        if digest != _digest(key, config, blob, diverged_at, vectors, penalty):
            what = (
                "has no digest (written before digests existed)"
                if digest is None
                else "does not match its digest: it was changed after it was written"
            )
            try:
                described = " ({model[kind]}, lr {lr:g}, seed {seed})".format(**json.loads(config))
            except (ValueError, KeyError, TypeError):
                described = ""
            raise EnvironmentFault(f"{self.path}: run {key}{described} {what}; rerun with --fresh to train it again")
        losses = _unpacked(blob)
        end_to_end = _unpacked(vectors).view(len(losses), -1) if vectors is not None else None
        penalty_curve = _unpacked(penalty) if penalty is not None else None
        return StoredRun(key, json.loads(config), losses, diverged_at, wall_s, device, end_to_end, penalty_curve)

    def put(self, runs: list[StoredRun]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = []
        for r in runs:
            config, losses, vectors, penalty = (
                json.dumps(r.config, sort_keys=True),
                _packed(r.losses),
                _packed(r.end_to_end),
                _packed(r.penalty),
            )
            digest = _digest(r.key, config, losses, r.diverged_at, vectors, penalty)
            rows.append((r.key, config, losses, r.diverged_at, r.wall_s, r.device, now, vectors, penalty, digest))
        with self._faults("write"), self._db:  # commits the batch as one transaction, or rolls it back
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO runs (key, config, losses, diverged_at, wall_s, device, created, end_to_end, penalty, digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        self._db.close()


def _refusal(tables: set[str], meta: dict[str, str], read_only: bool) -> str:
    """Why a file may not be used as a run store (empty: it may)."""
    if not tables:
        return "an empty file, not a run store, and --stored-only creates nothing; pass the store that holds the runs" if read_only else ""
    if tables - {"runs", "meta"} or "meta" not in tables and "runs" not in tables:
        return f"not an overparam run store (it holds the tables {', '.join(sorted(tables))}); pass --store a new file name"
    if "meta" not in tables:
        return "a run store from before digests (schema 1): its numbers cannot be checked, so it is not used; pass --store a new file name and the runs retrain"
    if meta.get("app") != "overparam":
        return f"not an overparam run store (its meta names the app {meta.get('app')!r}); pass --store a new file name"
    schema = meta.get("schema", "")
    if schema != SCHEMA_VERSION:
        newer = schema.isdigit() and int(schema) > int(SCHEMA_VERSION)
        fix = "upgrade overparam to read it" if newer else "pass --store a new file name and the runs retrain"
        return f"a run store of schema {schema!r}; this overparam reads and writes schema {SCHEMA_VERSION} only: {fix}"
    if "runs" not in tables:
        return "an overparam store without its runs table: damaged; pass --store a new file name"
    return ""


COLUMNS = {"key", "config", "losses", "diverged_at", "wall_s", "device", "created", "end_to_end", "penalty", "digest"}


def _missing_columns(columns: set[str], tables: set[str]) -> str:
    missing = COLUMNS - columns if "runs" in tables else set()
    return f"its runs table lacks {', '.join(sorted(missing))}: damaged or edited; pass --store a new file name" if missing else ""


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing. In a folder it may not write to, a WAL-mode store cannot
    make its -shm file: with no pending -wal beside it, the file is then read as immutable (nothing
    can be writing it there)."""
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60.0, isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=60.0, isolation_level=None)


def _digest(key: str, config: str, losses: bytes | None, diverged_at: int | None, vectors: bytes | None, penalty: bytes | None) -> str:
    """What a run's numbers are, hashed: any change to a stored row shows."""
    h = hashlib.sha256()
    for part in (key.encode(), config.encode(), losses or b"-", str(diverged_at).encode(), vectors or b"-", penalty or b"-"):
        h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


def _header(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(16)


def _advice(error: str) -> str:
    error = error.lower()
    if "full" in error or "no space" in error:
        return "free disk space and rerun (finished groups are kept)"
    if "readonly" in error or "read-only" in error or "permission" in error:
        return "make it writable or pass --store a writable path"
    if "not a database" in error or "malformed" in error or "corrupt" in error:
        return "it is damaged or not a store: pass --store a new file name (or delete it to start over)"
    return "check the path, or pass --store another file"


def _packed(values: torch.Tensor | None) -> bytes | None:
    return None if values is None else zlib.compress(values.to(torch.float64).contiguous().numpy().tobytes())


def _unpacked(blob: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(zlib.decompress(blob)), dtype=torch.float64)
