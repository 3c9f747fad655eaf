"""Where a report's numbers came from: code version, libraries, machine."""

from __future__ import annotations

import functools
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

from overparam import __version__


def git_commit(cwd: Path) -> str:
    """Short commit of the checkout holding `cwd`, with '+dirty' when tracked files outside reports/
    changed. Cached per checkout, not per folder: the first answer is the code this process loaded,
    even if the checkout moves on during a long run (the pipeline asks before it trains), and a
    report's .md (asked from specs/) and .json (asked from reports/) name the same commit."""
    return _commit_of_checkout(_checkout_root(cwd))


@functools.cache
def _checkout_root(cwd: Path) -> Path:
    """The top folder of the git checkout holding `cwd`; `cwd` itself outside one."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return cwd
    return Path(top.stdout.strip()) if top.returncode == 0 and top.stdout.strip() else cwd


@functools.cache
def _commit_of_checkout(cwd: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        # Regenerated reports do not make the code dirty: only changes outside reports/ count.
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)reports"]
        dirty = subprocess.run(status, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if commit.returncode:
        return "unknown (not a git checkout)"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def versions() -> str:
    return f"overparam {__version__}, torch {torch.__version__}, Python {platform.python_version()}"
