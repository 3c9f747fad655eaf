"""An experiment kind is one subpackage plus one registry line: a toy kind (a spec, a trivial
run, a check, a report) registered here runs end to end through the CLI, and the pipeline,
the loader, `schema` and `list` know it without a change."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from conftest import REPO, write_spec
from overparam import registry
from overparam.checks import CheckResult, Role, SpecCheck, StatementId
from overparam.claim import Claim
from overparam.cli import app
from overparam.kind import Kind
from overparam.report import checks_section, header, report_files, write_atomic
from overparam.session import Options, Outcome, Progress, Session
from overparam.strict import STRICT


class AtLeast(SpecCheck):
    """The toy's check: a model's value is at least `value` at every seed."""

    model_config = STRICT
    kind: Literal["at_least"]
    model: str
    value: float
    role: Role = "claim"  # what every kind's check declares: its role, and the statement it decides
    decides: StatementId | None = None

    def model_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("model",), self.model)]


class ToyModel(BaseModel):
    model_config = STRICT
    name: str
    scale: float = Field(..., gt=0)


class ToySpec(Claim):
    experiment: Literal["toy"]
    models: list[ToyModel] = Field(..., min_length=1)
    checks: list[AtLeast] = Field(..., min_length=1)  # type: ignore[assignment] - the toy's own check kind

    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


def verify_toy(spec: ToySpec, spec_path: Path, options: Options, session: Session, progress: Progress, start: float) -> Outcome:
    values = {m.name: [m.scale * (seed + 1) for seed in spec.seeds] for m in spec.models}  # the trivial "run"
    checks = [
        CheckResult(all(v >= c.value for v in values[c.model]), f"{c.model} ≥ {c.value:g}", ", ".join(f"{v:g}" for v in values[c.model]))
        for c in spec.checks
    ]
    report = report_files(options.reports, spec.id, options.profile)[0]
    options.reports.mkdir(parents=True, exist_ok=True)
    write_atomic(report, "\n".join([*header(spec, checks, spec_path, options.profile), checks_section(checks)]))
    return Outcome(spec, checks, report, 0, 0, time.perf_counter() - start)


def toy(**overrides: object) -> dict:
    spec = {
        "id": "toy",
        "experiment": "toy",
        "title": "A toy kind",
        "claim": "Scaled values are large enough.",
        "verdict": {"status": "by checks"},
        "seeds": [0, 1],
        "models": [{"name": "a", "scale": 2.0}],
        "checks": [{"kind": "at_least", "model": "a", "value": 1.5}],
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.KINDS, "toy", Kind("toy", ToySpec, verify_toy))


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_registered_kind_runs_end_to_end_through_the_cli(tmp_path: Path, registered: None) -> None:
    path = write_spec(tmp_path, toy())
    result = invoke("run", path, "--store", tmp_path / "store.sqlite", "--reports", tmp_path / "reports")
    assert result.exit_code == 0, result.output
    report = (tmp_path / "reports" / "toy.md").read_text()
    assert report.splitlines()[2].startswith("**Reproduced**") and "a ≥ 1.5" in report
    failing = write_spec(tmp_path, toy(checks=[{"kind": "at_least", "model": "a", "value": 3.0}]), name="failing.yaml")
    assert invoke("run", failing, "--store", tmp_path / "store.sqlite", "--reports", tmp_path / "reports").exit_code == 1


def test_the_loader_schema_and_list_know_a_registered_kind(tmp_path: Path, registered: None) -> None:
    (tmp_path / "specs").mkdir()
    write_spec(tmp_path / "specs", toy())
    listed = invoke("list", "--specs", tmp_path / "specs")
    assert listed.exit_code == 0 and "toy" in listed.output, listed.output
    schema = json.loads(invoke("schema").output)
    assert "ToySpec" in schema["$defs"]
    bad = write_spec(tmp_path, toy(checks=[{"kind": "at_least", "model": "b", "value": 1.0}]), name="bad.yaml")
    result = invoke("validate", bad)
    assert result.exit_code == 2 and "checks[0].model: no model named 'b'" in result.output, result.output


def test_the_pipeline_imports_no_kind() -> None:
    tree = ast.parse((REPO / "runner" / "overparam" / "pipeline.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported and not [name for name in imported if name.startswith("overparam.kinds")], imported
