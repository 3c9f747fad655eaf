"""How the convnet claim is verified: MNIST → a run per model and seed → checks → report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from overparam.checks import Stability, evaluate
from overparam.data.dataset import Dataset
from overparam.data.mnist import load_mnist
from overparam.kind import Kind
from overparam.kinds.convnet.report import BATCH_LOSS, convnet_body, convnet_panels
from overparam.kinds.convnet.runs import convnet_results, plan_convnet_runs, train_convnet_group
from overparam.kinds.convnet.spec import ConvnetSpec
from overparam.runs_report import ReportInputs, write_report
from overparam.session import Options, Outcome, Progress, RunFetcher, Session


def images_for(session: Session, spec: ConvnetSpec, spec_path: Path) -> tuple[torch.Tensor, torch.Tensor, Dataset]:
    """Images, labels, and their description as a Dataset (flattened pixels) for the report.
    (--data-dir names the UCI folder; MNIST comes from data.path or OVERPARAM_MNIST.)"""
    folder = (spec_path.parent / spec.data.path) if spec.data.path else None

    def load() -> tuple[torch.Tensor, torch.Tensor, Dataset]:
        images, labels, fingerprint = load_mnist(spec.data, folder)
        details = {"split": f"{spec.data.split} ({images.shape[0]} images)", "preprocessing": "pixels scaled to [−0.5, 0.5]"}
        return images, labels, Dataset(images.flatten(1), labels, fingerprint, f"MNIST {spec.data.split} split", details)

    return session.memo(("mnist", spec.data.split, str(folder)), load)


def verify(spec: ConvnetSpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    data = images_for(session, spec, spec_path)[2]
    runs = plan_convnet_runs(spec, data.fingerprint)
    fetcher = RunFetcher(options, session, progress, train_convnet_group)  # each run its own group: --jobs spreads them
    stored = fetcher.fetch(spec.id, runs, lambda _: data)
    trained = fetcher.trained
    results = convnet_results(spec, runs, stored)
    checks = [replace(evaluate(check, results), stability=NOT_ASSESSED) for check in spec.checks]
    wall_s = time.perf_counter() - start
    inputs = ReportInputs(
        spec=spec,
        spec_path=spec_path,
        profile=options.profile,
        data=data,
        optima={},
        results=results,
        sweeps={},
        checks=checks,
        stored=[stored[r.key] for r in runs],
        trained=trained,
        wall_s=wall_s,
        device=options.device,
    )
    report = write_report(inputs, options.reports, convnet_panels(inputs), CAPTION, convnet_body(inputs), marked=BATCH_LOSS)
    return Outcome(spec, checks, report, trained, len(runs) - trained, wall_s)


CAPTION = (
    "Lines: median over seeds of the batch loss, each point the mean over a window of record_every steps: the cross-entropy "
    "(left) and the cross-entropy plus the L2 penalty, the tutorial's batch loss (right); bands: min–max over seeds. "
    "Both nets train at one lr, the tutorial's (nothing is tuned)."
)
NOT_ASSESSED = Stability(
    None,
    "nothing is tuned: one lr, the tutorial's",
    None,
    "not assessed: a one-ulp twin of every convnet run would double the spec's cost",
)


KIND = Kind("convnet", ConvnetSpec, verify)
