"""The regression kind's report sections: results per model, the lr sweep, the setup; and the
figure's panels (one per ℓp exponent)."""

from __future__ import annotations

import math
from dataclasses import replace

from pydantic import BaseModel

from overparam.checks import CloseCheck, ConvergesCheck
from overparam.evidence import step_below
from overparam.figures import COLOURS, LOWER
from overparam.report import key_value_table
from overparam.results import ROUNDING, ModelResult, median, metric_per_seed
from overparam.runs_report import Panels, ReportInputs
from overparam.sweep.models import ModelSpec
from overparam.sweep.select import score_text
from overparam.sweep.spec import RegressionSpec, Train


def regression_panels(inputs: ReportInputs) -> Panels:
    """One panel per ℓp exponent, L − L* of each model at its picked lr (one panel per depth where
    more models share it than the palette has colours), with dotted the run one lr step lower of
    each model a fragile check reads; and where checks compare curves (close, converges), one of
    the relative deviation between each compared pair, which the gap panel cannot show (the curves
    lie on top of each other)."""
    spec = inputs.spec
    lower = _one_step_lower(inputs)
    panels: Panels = []
    for p in spec.exponents:
        models = [m for m in spec.models if spec.loss_of(m.name).p == p]
        title = f"ℓ{p:g} loss − L* (distance from optimum)"
        facets = _by_depth(models) if len(models) > len(COLOURS) else {0: models}
        for depth, members in facets.items():
            results = [inputs.results.picked[m.name] for m in members] + [lower[m.name] for m in members if m.name in lower]
            panels.append((title + (f", depth {depth}" if len(facets) > 1 else ""), results))
    pairs = list(dict.fromkeys(tuple(c.models) for c in spec.checks if isinstance(c, CloseCheck | ConvergesCheck)))
    deviations = [_deviation(inputs.results.picked[a], inputs.results.picked[b]) for a, b in pairs]
    if deviations:
        panels.append(("relative deviation of the loss |L − L'| / L' (picked lr)", deviations))
    return panels


def _by_depth(models: list[ModelSpec]) -> dict[int, list[ModelSpec]]:
    facets: dict[int, list[ModelSpec]] = {}
    for model in models:
        facets.setdefault(int(model.shape().get("depth", 1)), []).append(model)
    return dict(sorted(facets.items()))


def _one_step_lower(inputs: ReportInputs) -> dict[str, ModelResult]:
    """For each model a fragile check reads at its pick, its run one lr step lower (what flipped the
    check), named as a variant so that the figure dots it in the model's colour. Only checks that
    read picks can be fragile (evidence._fragility), so every one here has models to move."""
    lower: dict[str, ModelResult] = {}
    for check, result in zip(inputs.spec.checks, inputs.checks):
        if not (result.stability and result.stability.fragile):
            continue
        for _, name in check.model_refs():
            below = step_below(inputs.sweeps.get(name, []), inputs.results.picked[name].lr)
            run = inputs.results.by_lr.get(name, {}).get(below) if below is not None else None
            if run is not None:
                lower[name] = replace(run, name=f"{name} {LOWER}")
    return lower


def regression_caption(panels: Panels) -> str:
    deviation = (
        " The last panel: each compared pair's relative loss deviation (median over seeds, band min–max)."
        if len(panels) > 1 and "deviation" in panels[-1][0]
        else ""
    )
    lower = (
        " Dotted, in a model's colour: its run one lr step lower, on which a fragile check flips."
        if any(r.name.endswith(LOWER) for _, results in panels for r in results)
        else ""
    )
    lrs = {r.lr for _, results in panels[:1] for r in results if r.lr is not None and not r.name.endswith(LOWER)}
    at = f" Every model at one learning rate, {lrs.pop():g}." if len(lrs) == 1 else " Each model at its own picked learning rate."
    return "Lines: median over seeds of L − L*; bands: min–max over seeds." + at + lower + deviation


def _deviation(a: ModelResult, b: ModelResult) -> ModelResult:
    """a's loss deviation from b's, per seed and step, as a curve the gap figure draws."""
    if a.lr is None or b.lr is None or a.lr != b.lr:
        return ModelResult(f"{a.name} vs {b.name}", None, a.seeds, a.steps, a.losses, 0.0, why_none="not at one lr")
    return ModelResult(f"{a.name} vs {b.name}", a.lr, a.seeds, a.steps, (a.losses - b.losses).abs() / b.losses.abs(), 0.0)


def regression_body(inputs: ReportInputs) -> list[str]:
    return [_results_section(inputs), _sweep_section(inputs), _setup_section(inputs)]


def _results_section(inputs: ReportInputs) -> str:
    spec = inputs.spec
    results = list(inputs.results.picked.values())
    level = _common_gap_level(results)
    seeds = spec.seeds
    usable = [r for r in results if r.lr is not None]
    # When every model is at the level by the first record, the column says nothing: dropped.
    timed = any(median(metric_per_seed(r, "steps_to_gap", gap=level)) > float(r.steps[1]) for r in usable if len(r.steps) > 1)
    head = "| model | picked lr (paper's units) | " + " | ".join(f"L − L*, seed {s}" for s in seeds) + " |"
    head += f" steps to L − L* ≤ {level:.3g} (median) |" if timed else ""
    lines = ["## Results per model\n", head, "|" + "---|" * (2 + len(seeds) + timed)]
    for r in results:
        if r.lr is None:
            lines.append(f"| {r.name} | none: {r.why_none} |" + " — |" * (len(seeds) + timed))
            continue
        finals = " | ".join(f"{g:.4g}" for g in r.gaps[:, -1].tolist())
        lines.append(f"| {r.name} | {r.lr:g} ({_paper_lr(spec, r.name, r.lr):.3g}) | {finals} |" + (f" {_steps_to(r, level)} |" if timed else ""))
    lines.append(
        "\nThe paper's loss carries a 1/p factor ours does not. For gradient descent its lr for the same steps is therefore p × ours "
        "(in brackets); AdaGrad, AdaDelta and Adam divide each step by a running scale of the gradient, which the factor scales alike "
        "(up to ε), so for them the paper's lr is ours."
        + (
            f" The step column measures speed at one level every model reaches: the highest median final gap among the models ({level:.3g}).\n"
            if timed
            else "\n"
        )
    )
    if any(r.at_optimum for r in results):
        lines.append(f"A gap shown as 0 is within rounding of L* (|L − L*| ≤ {ROUNDING[spec.train.dtype]:.2g}·L*), not a measured value.\n")
    return "\n".join(lines)


def _paper_lr(spec: RegressionSpec, name: str, lr: float) -> float:
    """Our lr in the paper's units: p × ours for gradient descent (the paper's 1/p factor scales its
    gradient), ours for the adaptive optimizers (invariant to the loss's scale, up to ε)."""
    scaled = spec.model(name).optimizer_of(spec.train.optimizer).kind == "gd"
    return spec.loss_of(name).p * lr if scaled else lr


def _sweep_section(inputs: ReportInputs) -> str:
    spec = inputs.spec
    rule = {
        "lowest_final_gap": "median over seeds of the final L − L*",
        "smallest": "median over seeds of the final L − L*; every lr is compared and the smallest is shown",
        "lowest_mean_log_gap": "median over seeds of the mean of log10(L − L*) over the run",
        "fastest": f"median over seeds of the steps to reach L − L* ≤ {spec.tune.gap or 0:g}, ties broken by the final gap",
    }[spec.tune.pick]
    lines = [
        "## Learning-rate sweep\n",
        f"Pick rule `{spec.tune.pick}`: score per lr is the {rule}; lower is better; an lr where any seed diverged is never picked. "
        "**Bold**: picked." + _refine_text(spec) + "\n",
    ]
    lines.append("| lr | " + " | ".join(m.name for m in spec.models) + " |")
    lines.append("|---|" + "---|" * len(spec.models))
    for lr in sorted({s.lr for sweep in inputs.sweeps.values() for s in sweep}):
        cells = []
        for model in spec.models:
            score = next((s for s in inputs.sweeps[model.name] if s.lr == lr), None)
            text = "—" if score is None else score_text(score, spec.tune.pick)
            cells.append(f"**{text}**" if inputs.results.picked[model.name].lr == lr else text)
        refined = "" if lr in spec.all_lrs else " †"
        lines.append(f"| {lr:g}{refined} | " + " | ".join(cells) + " |")
    for warning in inputs.warnings:
        lines.append(f"\n**Warning.** {warning}.")
    return "\n".join(lines) + "\n"


def _refine_text(spec: RegressionSpec) -> str:
    if spec.tune.refine is None:
        return " No refinement: each pick is resolved to its grid's step."
    return (
        f" † refined: each pick is bracketed by run lrs within a factor 2^(1/{spec.tune.refine}) = {2 ** (1 / spec.tune.refine):.3f} "
        "(to 3 significant digits) on both sides, by running geometric midpoints."
    )


def _setup_section(inputs: ReportInputs) -> str:
    spec, data = inputs.spec, inputs.data
    train = spec.train
    models = "; ".join(_model_text(m) for m in spec.models)
    rows = [
        ("data", f"{data.name}: {data.shape[0]} rows × {data.shape[1]} features"),
        ("loss", "; ".join(_loss_text(p, inputs.optima[p], float(data.y.abs().pow(p).mean())) for p in spec.exponents)),
        ("models", models),
        ("optimizer", f"full-batch {_config_text(train.optimizer)}, weight decay {train.weight_decay:g}"),
        ("steps", _schedule_text(train)),
        ("init", _config_text(train.init)),
        ("learning rates", _grids_text(spec)),
        ("seeds", ", ".join(map(str, spec.seeds))),
        ("dtype", train.dtype),
    ]
    return key_value_table("Setup", rows)


def _grids_text(spec: RegressionSpec) -> str:
    own = [f"{m.name}: " + ", ".join(f"{v:g}" for v in spec.lr_grid(m.name)) for m in spec.models if m.lr]
    shared = ", ".join(f"{v:g}" for v in spec.tune.lr)
    text = f"{shared}" + (f" (own grids: {'; '.join(own)})" if own else "")
    refine = f", refined to a factor 2^(1/{spec.tune.refine})" if spec.tune.refine else ""
    return text + f"; pick: {spec.tune.pick}{refine}"


def _loss_text(p: float, optimum: float, at_zero: float) -> str:
    method = "least squares" if p == 2 else "Newton"
    start = f"L(w = 0) = mean |y|^{p:g} = {at_zero:.4g}" + (
        " (the z-scored target's kurtosis: where near-zero inits start)" if p == 4 else ""
    )
    return f"ℓ{p:g}: mean over examples of |xᵀw − y|^{p:g} (no 1/p factor), L* = {optimum:.12g} (exact, {method}), {start}"


def _schedule_text(train: Train) -> str:
    if train.steps is not None:
        return f"{train.steps:,} (loss recorded every {train.record_every or 100:,})"
    return f"horizon η·steps = {train.horizon:g} at every lr (steps = horizon / lr), {train.records} recorded points per run"


def _common_gap_level(results: list[ModelResult]) -> float:
    finals = [median(r.gaps[:, -1].tolist()) for r in results if r.lr is not None]
    return max(finals) if finals else math.nan


def _steps_to(result: ModelResult, level: float) -> str:
    per_seed = metric_per_seed(result, "steps_to_gap", gap=level)
    value = median(per_seed)
    return "not reached" if math.isinf(value) else f"{value:,.0f}"


def _model_text(model: ModelSpec) -> str:
    extras = [f"{key} {_config_text(value)}" for key in ("init", "optimizer", "loss") if (value := getattr(model, key, None)) is not None]
    return model.describe() + "".join(f", {extra}" for extra in extras)


def _config_text(config: BaseModel) -> str:
    """`kind (field value, …)` for an init, optimizer or loss config."""
    values = config.model_dump()
    kind = values.pop("kind")
    fields = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
    return f"{kind} ({fields})" if fields else str(kind)
