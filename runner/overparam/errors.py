"""The exception types the CLI turns into lines on stderr and an exit code, never a traceback:
`OverparamError` for bad input (specs, data, flags, paths), exit 2; `EnvironmentFault` for a
fault of the machine or the run store (unwritable or full disk, a damaged or foreign store), exit
3. Bugs stay ordinary exceptions.
"""

from __future__ import annotations


class OverparamError(Exception):
    """A problem the user can fix; each entry of `lines` is one complete, located message."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines: tuple[str, ...] = lines


class EnvironmentFault(OverparamError):
    """Not the input: the disk, a permission, the run store. Exit 3; `--debug` shows the cause."""
