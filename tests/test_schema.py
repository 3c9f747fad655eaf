"""`overparam schema` says exactly what the validator accepts: every case of the bad-spec corpora
is refused by both (or breaks a rule the schema states in words, under `x-rules`), and every
shipped spec and profile is accepted by both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from test_bad_specs import CORPUS
from test_maps import BAD_MAPS, small_map

from conftest import REPO, write_spec
from overparam.errors import OverparamError
from overparam.schema import published_schema
from overparam.specload import check_all_profiles, deep_merged
from overparam.yamlpos import load_yaml

SCHEMA = published_schema()
VALIDATOR = Draft202012Validator(SCHEMA)

# Cases that break a rule JSON Schema cannot state (between a field and other parts of the spec),
# with the words of that rule, which the schema must carry.
IN_WORDS = {
    "check_unknown_model": "every model a check names",
    "paper_curve_wrong_length": "one value per step of `curve_steps`",
    "paper_curve_unknown_model": "paper.curves, is one of the models",
    "duplicate_model_names": "models have distinct names",
    "model_names_repeated": "models have distinct names",
    "at_step_not_recorded": "at_step is a recorded step",
    "batch_loss_without_a_penalty": "metric final_batch_loss (cross-entropy + L2 penalty) only where the runs have a penalty",
    "steps_not_multiple": "steps is a multiple of record_every",
    "the region holds no cell of this map": "region holds at least one cell",
    "give them distinct `label`s": "levels have distinct names",
}


def words_of(schema: Any) -> list[str]:
    """Every rule the schema states in words, wherever it sits."""
    if isinstance(schema, dict):
        return list(schema.get("x-rules", [])) + [rule for value in schema.values() for rule in words_of(value)]
    if isinstance(schema, list):
        return [rule for value in schema for rule in words_of(value)]
    return []


def json_document(path: Path) -> dict[str, Any] | None:
    """The spec file as JSON data; None where it is not YAML holding JSON data (the schema's
    description says such files are refused: aliases, repeated keys, .nan, …)."""
    try:
        data, _ = load_yaml(path)
        return json.loads(json.dumps(data, allow_nan=False))
    except (OverparamError, ValueError):
        return None


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Why the schema refuses the document, or the document with one of its profiles merged in."""
    profiles = document.get("profiles")
    merged = [deep_merged(document, overrides or {}) for overrides in profiles.values()] if isinstance(profiles, dict) else []
    return [error.message for doc in [document, *merged] for error in VALIDATOR.iter_errors(doc)]


def assert_both_refuse(path: Path, case: str) -> None:
    with pytest.raises(OverparamError):
        check_all_profiles(path)
    document = json_document(path)
    if document is None:
        return
    refusals = schema_errors(document)
    if case in IN_WORDS:
        assert not refusals, f"the schema now states this rule itself: drop {case!r} from IN_WORDS ({refusals})"
        assert any(IN_WORDS[case] in rule for rule in words_of(SCHEMA)), f"the schema does not state {IN_WORDS[case]!r}"
    else:
        assert refusals, "the schema accepts a spec the validator refuses"


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_schema_refuses_each_spec_the_validator_refuses(tmp_path: Path, case: str) -> None:
    content = CORPUS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_both_refuse(path, case)


@pytest.mark.parametrize(("overrides", "fragment"), BAD_MAPS)
def test_the_schema_refuses_each_map_the_validator_refuses(tmp_path: Path, overrides: dict, fragment: str) -> None:
    assert_both_refuse(write_spec(tmp_path, small_map(**overrides)), fragment)


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_schema_accepts_every_shipped_spec_and_profile(path: Path) -> None:
    check_all_profiles(path)
    document = json_document(path)
    assert document is not None and schema_errors(document) == []


def test_a_profile_may_override_any_key_at_any_depth_but_only_keys_that_exist() -> None:
    """The profile's own schema, before any merge: an editor sees a misspelt key where it is."""
    spec = small_map(profiles={"long": {"train": {"steps": 600, "init": {"std": 0.2}}, "rows": {"axis": "p", "levels": [{"value": 3}]}}})
    assert VALIDATOR.is_valid(spec)
    for wrong in ({"train": {"init": {"sdt": 0.2}}}, {"train": {"steps": -1}}, {"rows": {"levels": [{"value": 3, "lr": []}]}}):
        assert not VALIDATOR.is_valid(small_map(profiles={"long": wrong})), wrong


def test_every_rule_in_words_names_a_case_of_a_corpus() -> None:
    cases = set(CORPUS) | {fragment for _, fragment in BAD_MAPS}
    assert set(IN_WORDS) <= cases
