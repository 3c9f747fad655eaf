"""The CLI's small things a new user trips on (issue 32's papercuts), each with its test."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from conftest import REPO, small_spec, write_spec
from overparam import __version__
from overparam.cli import app


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_version_and_short_help() -> None:
    version = invoke("--version")
    assert version.exit_code == 0 and version.output.strip() == f"overparam {__version__}"
    short = invoke("-h")
    assert short.exit_code == 0 and "Exit codes: 0" in short.output and "OVERPARAM_MNIST" in short.output
    command = invoke("run", "-h")
    assert command.exit_code == 0 and "Example: overparam run" in command.output
    assert "<str>" not in command.output and "<bool>" not in command.output and "<path>" not in command.output


def test_debug_works_after_the_subcommand_too(tmp_path: Path) -> None:
    store = tmp_path / "theirs.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    spec = write_spec(tmp_path, small_spec())
    command = [sys.executable, "-m", "overparam", "run", str(spec), "--store", str(store), "--reports", str(tmp_path / "r"), "--debug"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "Traceback" in done.stderr and "not an overparam run store" in done.stderr


def test_run_and_validate_take_folders_and_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    write_spec(specs, small_spec(), "first.yaml")
    write_spec(specs, small_spec(id="second"), "second.yaml")
    monkeypatch.chdir(tmp_path)
    assert invoke("validate", "specs").output.strip() == "2 specs valid"
    assert invoke("validate", "tiny", "second").output.strip() == "2 specs valid"  # ids, looked up in ./specs
    unknown = invoke("validate", "tinny")
    assert unknown.exit_code == 2 and "tinny: no such spec file, folder or id in specs/; ids are second, tiny" in unknown.output
    ran = invoke("run", "tiny", "--store", tmp_path / "s.sqlite", "--reports", tmp_path / "r")
    assert ran.exit_code == 0 and (tmp_path / "r" / "tiny.md").is_file()


def test_list_piped_cuts_nothing() -> None:
    listing = invoke("list", "--specs", REPO / "specs")  # CliRunner's output is no terminal, like a pipe
    rows = [line.split("\t") for line in listing.output.splitlines()]
    assert listing.exit_code == 0 and rows[0][:2] == ["id", "group"]
    ids = [row[0] for row in rows[1:]]
    assert "adam_depth" in ids and "single_output_rule" in ids and all("…" not in i for i in ids)


def test_schema_of_one_kind_is_smaller_and_still_validates_its_specs() -> None:
    whole = invoke("schema").output
    only = invoke("schema", "--kind", "map")
    assert only.exit_code == 0 and len(only.output) < len(whole) / 2
    validator = jsonschema.Draft202012Validator(json.loads(only.output))
    import yaml

    maps = [yaml.safe_load(path.read_text()) for path in sorted((REPO / "specs").glob("map_*.yaml"))]
    assert maps and all(validator.is_valid(spec) for spec in maps)
    assert not validator.is_valid(yaml.safe_load((REPO / "specs" / "l4_depth.yaml").read_text()))
    wrong = invoke("schema", "--kind", "maps")
    assert wrong.exit_code == 2 and "kinds are regression, convnet, theory, map" in wrong.output


def test_verify_all_and_list_speak_json(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    write_spec(specs, small_spec(), "tiny.yaml")
    args = ["--specs", specs, "--store", tmp_path / "s.sqlite", "--reports", tmp_path / "r", "--json"]
    result = invoke("verify-all", *args)
    claims = json.loads(result.stdout)  # stdout alone: the progress and the per-claim lines are on stderr
    assert result.exit_code == 0 and [c["id"] for c in claims] == ["tiny"]
    (claim,) = claims
    assert claim["headline"] == "reproduced" and claim["verdict_current"] is True
    assert claim["checks"][0]["passed"] is True and claim["checks"][0]["role"] == "claim" and "final_gap" in claim["checks"][0]["statement"]
    listed = json.loads(invoke("list", "--specs", specs, "--reports", tmp_path / "r", "--json").stdout)
    assert listed[0]["id"] == "tiny" and listed[0]["reports"]["default"]["headline"] == "reproduced"

