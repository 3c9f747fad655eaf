"""One claim end to end: load the spec, hand it to its experiment kind (spec → data → plan →
store/engine → picks → checks → report), return what came out. Knows no kind: see registry."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from overparam import provenance
from overparam.registry import kind_of
from overparam.report import finish_report, write_record
from overparam.session import Options, Outcome, Progress, Session
from overparam.specload import load_located

__all__ = ["Options", "Outcome", "Progress", "Session", "verify"]


def verify(spec_path: Path, options: Options, session: Session, progress: Progress) -> Outcome:
    start = time.perf_counter()
    provenance.git_commit(spec_path.resolve().parent)  # pin the commit before anything trains
    spec, located = load_located(spec_path, options.profile)  # the file is read once: edits during the run do not count
    kind = kind_of(spec.model_dump(include={"experiment"}))
    outcome = kind.verify(spec, spec_path, options, session, progress, start)
    untraced = finish_report(spec, outcome.checks, outcome.report, spec_path, options.profile)
    write_record(spec, outcome.checks, outcome.report, options.profile, untraced)  # what the index shows of it
    return replace(outcome, untraced=untraced, located=located)
