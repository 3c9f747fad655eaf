"""Files written whole or not at all (reports, figures, the index), and files read only when they
are regular files of a bounded size (a FIFO or a device would hang the read, /dev/zero without end)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from overparam.errors import EnvironmentFault, OverparamError


def write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """`write` into a temporary file beside `path`, then rename it over `path`, so a crash never
    leaves half a file. Any file-system failure removes the temporary file and becomes one
    EnvironmentFault naming `path` (exit 3)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise EnvironmentFault(
            f"{path}: cannot write it ({error.strerror or error}); make the folder writable or free disk space"
        ) from error


def read_regular(path: Path, what: str, limit: int) -> bytes:
    """The bytes of `path`, refused (OverparamError, one line) unless it is a regular file of at most
    `limit` bytes: checked by type before a byte is read."""
    try:
        info = path.stat()
    except OSError as error:
        raise OverparamError(f"{path}: cannot read the {what} ({error.strerror or error})") from error
    if stat.S_ISDIR(info.st_mode):
        raise OverparamError(f"{path}: a folder, not a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise OverparamError(f"{path}: not a regular file (a FIFO, socket or device); give the {what} as a file")
    if info.st_size > limit:
        raise OverparamError(f"{path}: {info.st_size:,} bytes, more than a {what} may be ({limit:,}); is it the right file?")
    try:
        with path.open("rb") as file:
            return file.read(limit)  # its size was checked above
    except OSError as error:
        raise OverparamError(f"{path}: cannot read the {what} ({error.strerror or error})") from error
