"""The one exception type for user errors (bad specs, missing data, bad flags).

The CLI turns an `OverparamError` into its lines on stderr and exit code 2, never a traceback.
Bugs stay ordinary exceptions.
"""

from __future__ import annotations


class OverparamError(Exception):
    """A problem the user can fix; each entry of `lines` is one complete, located message."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines: tuple[str, ...] = lines
