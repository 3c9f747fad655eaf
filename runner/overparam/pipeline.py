"""One claim end to end: load the spec, hand it to its experiment kind (spec → data → plan →
store/engine → picks → checks → report), return what came out. Knows no kind: see registry."""

from __future__ import annotations

import time
from pathlib import Path

from overparam import provenance
from overparam.registry import kind_of
from overparam.report import write_record
from overparam.session import Options, Outcome, Progress, Session
from overparam.specload import load_spec

__all__ = ["Options", "Outcome", "Progress", "Session", "verify"]


def verify(spec_path: Path, options: Options, session: Session, progress: Progress) -> Outcome:
    start = time.perf_counter()
    provenance.git_commit(spec_path.resolve().parent)  # pin the commit before anything trains
    spec = load_spec(spec_path, options.profile)
    kind = kind_of(spec.model_dump(include={"experiment"}))
    outcome = kind.verify(spec, spec_path, options, session, progress, start)
    write_record(spec, outcome.checks, outcome.report, options.profile)  # what the index shows of it
    return outcome
