"""The interface of an experiment kind: the value of a spec's `experiment:` key, the spec it
validates, and how such a spec is verified (trained, checked, reported). The registry of kinds
is `overparam.kinds`; the pipeline knows only this interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overparam.claim import Claim
from overparam.session import Options, Outcome, Progress, Session

# verify(spec, spec_path, options, session, progress, start) -> Outcome; `start` is when the
# invocation began on this spec (perf_counter), for the report's wall time.
Verify = Callable[[Any, Path, Options, Session, Progress, float], Outcome]


@dataclass(frozen=True)
class Kind:
    name: str
    spec: type[Claim]
    verify: Verify
