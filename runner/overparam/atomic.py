"""Files written whole or not at all: reports, figures, the index."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from overparam.errors import EnvironmentFault


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
