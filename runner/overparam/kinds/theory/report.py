"""The report of a theory claim: what the probe measured, per case, and the checks on it."""

from __future__ import annotations

from pathlib import Path

from overparam import provenance
from overparam.checks import CheckResult
from overparam.claim import paper_text
from overparam.figures import literal, plt, save_atomic
from overparam.kinds.theory.probes import ProbeResult
from overparam.kinds.theory.spec import TheorySpec
from overparam.report import checks_section, header, key_value_table, report_files, write_atomic


def write_theory_report(
    spec: TheorySpec,
    spec_path: Path,
    profile: str | None,
    results: list[ProbeResult],
    checks: list[CheckResult],
    wall_s: float,
    reports: Path,
) -> Path:
    path, figure = report_files(reports, spec.id, profile)
    has_figure = bool(results[0].series)
    if has_figure:
        _figure(spec, results[0], figure)
    parts = [
        *header(spec, checks, spec_path, profile, f"figures/{figure.name}" if has_figure else None),
        "## The paper\n",
        paper_text(spec.paper) + "\n",
        checks_section(checks),
        _table(results[0], spec.seeds[0]),
        "## Probe\n",
        f"`{spec.probe.model_dump_json()}`, seeds {', '.join(map(str, spec.seeds))}.\n",
        "## Assumptions\n\n" + "\n".join(f"- {a}" for a in spec.assumptions) + "\n" if spec.assumptions else "",
        key_value_table(
            "Provenance",
            [
                ("commit", provenance.git_commit(spec_path.resolve().parent)),
                ("versions", provenance.versions()),
                ("device", provenance.device_name("cpu")),
                ("dtype", "float64"),
                ("wall time", f"{wall_s:.1f} s for every seed"),
                ("date", provenance.now_utc()),
            ],
        ),
    ]
    write_atomic(path, "\n".join(p for p in parts if p))
    return path


def _table(result: ProbeResult, seed: int) -> str:
    if not result.table:
        return ""
    columns = list(result.table[0])
    lines = [f"## Per case (seed {seed})\n", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in result.table]
    return "\n".join(lines) + "\n"


def _figure(spec: TheorySpec, result: ProbeResult, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    for label, (x, y) in result.series.items():
        if label == "eigenvalues":  # predicted vs computed: points on the diagonal
            ax.scatter(x, y, s=10, alpha=0.6, label="eigenpairs vec(u_r v_r'ᵀ)")
            positive = [v for v in x if v > 0]
            lo, hi = min(positive), max(positive)
            ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="predicted = computed")
            ax.set_xlabel("predicted eigenvalue Σ_j σ_r^{2(N−j)/N} σ_r'^{2(j−1)/N}")
            ax.set_ylabel("vᵀ P v, P built explicitly")
        else:
            ax.plot(x, y, marker="o", label=literal(label), linestyle="--" if "unbalanced" in label else "-")
            ax.set_xlabel("learning rate η (fixed horizon η·steps)")
            ax.set_ylabel("max ‖W_e(net) − W_e(rule 10)‖ / ‖W_e(rule 10)‖")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(literal(spec.title), fontsize=9)
    save_atomic(fig, path)
