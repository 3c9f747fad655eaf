"""The convnet claim's report: the regression report's frame with its own figure panels,
results and setup."""

from __future__ import annotations

from overparam.engine.convnet import TutorialConvnet, parameter_count
from overparam.kinds.convnet.spec import ConvnetTrain, TutorialConvnetModel
from overparam.report import key_value_table
from overparam.results import median, metric_per_seed
from overparam.runs_report import Panels, ReportInputs

BATCH_LOSS = "cross-entropy + L2 penalty (the tutorial's batch loss)"  # what the paper plots: its readings go on this panel


def convnet_panels(inputs: ReportInputs) -> Panels:
    picked = [inputs.results.picked[m.name] for m in inputs.spec.models]
    with_penalty = [r.with_penalty() for r in picked if r.penalty is not None]
    return [("batch cross-entropy (window mean)", picked), (BATCH_LOSS, with_penalty)]


def convnet_body(inputs: ReportInputs) -> list[str]:
    return [_results_section(inputs), _setup_section(inputs)]


def _results_section(inputs: ReportInputs) -> str:
    spec = inputs.spec
    seeds = spec.seeds
    head = (
        "| model | parameters | "
        + " | ".join(f"final cross-entropy, seed {s}" for s in seeds)
        + " | final L2 penalty (median) | final batch loss (median) |"
    )
    lines = ["## Results per model\n", head, "|" + "---|" * (4 + len(seeds))]
    for model in spec.models:
        r = inputs.results.picked[model.name]
        count = parameter_count(TutorialConvnet(model.overparameterized, seed=0))
        finals = " | ".join(f"{v:.4g}" for v in r.losses[:, -1].tolist())
        penalty = f"{median(r.penalty[:, -1].tolist()):.4g}" if r.penalty is not None else "—"
        batch = f"{median(metric_per_seed(r, 'final_batch_loss')):.4g}" if r.penalty is not None else "—"
        lines.append(f"| {model.name} | {count:,} | {finals} | {penalty} | {batch} |")
    original = parameter_count(TutorialConvnet(False, seed=0))
    twin = parameter_count(TutorialConvnet(True, seed=0))
    lines.append(
        f"\nThe overparameterized twin has {twin - original:,} more parameters (+{100 * (twin / original - 1):.1f}%; the paper: ≈+15.8%)."
    )
    lines.append(
        "Cross-entropy and penalty are means over the last window of the run; the tutorial's batch loss, which the paper plots, is their sum.\n"
    )
    return "\n".join(lines)


def _setup_section(inputs: ReportInputs) -> str:
    spec, train = inputs.spec, inputs.spec.train
    rows = [
        ("data", f"{inputs.data.name}: {inputs.data.shape[0]} images"),
        (
            "models",
            "; ".join(f"{m.name}: {_described(m)}" for m in spec.models),
        ),
        ("optimizer", f"SGD, momentum {train.momentum:g}, lr {train.lr:g} × {train.decay:g}^{_decays(train)}, batch {train.batch_size}"),
        ("penalty", f"{train.penalty:g} × Σ‖θ‖²/2 over the dense layers' weights and biases"),
        ("steps", f"{train.steps:,} (losses averaged over windows of {train.record_every:,} steps)"),
        ("seeds", ", ".join(map(str, spec.seeds))),
        ("dtype", "float32"),
    ]
    return key_value_table("Setup", rows)


def _decays(train: ConvnetTrain) -> str:
    """The exponent of the lr's staircase, in words."""
    return "epoch" if train.decay_every_images is None else f"⌊images seen / {train.decay_every_images:,}⌋"


def _described(model: TutorialConvnetModel) -> str:
    if not model.overparameterized:
        return "the tutorial convnet"
    start = "the identity (the same function as the original)" if model.added_factors == "identity" else "random, like the other weights"
    return f"dense layers as products of two matrices, the added factors starting at {start}"
