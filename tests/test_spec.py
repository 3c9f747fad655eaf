"""The spec schema and its located, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, small_spec, write_spec
from overparam.errors import OverparamError
from overparam.specload import check_all_profiles, load_spec
from overparam.sweep.spec import RegressionSpec

LINE = r"^.+\.yaml:\d+:\d+: "


def errors_of(path: Path, profile: str | None = None) -> tuple[str, ...]:
    with pytest.raises(OverparamError) as caught:
        load_spec(path, profile) if profile else check_all_profiles(path)
    return caught.value.lines


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_spec_and_profile_is_valid(path: Path) -> None:
    spec = check_all_profiles(path)
    assert spec.id == path.stem


def test_a_valid_spec_loads_into_typed_data(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, small_spec()))
    assert isinstance(spec, RegressionSpec) and spec.models[1].depth == 2 and spec.train.dtype == "float64"


def test_yaml11_exponent_strings_are_coerced_to_floats(tmp_path: Path) -> None:
    text = write_spec(tmp_path, small_spec()).read_text().replace("- 0.01", "- 1e-2")
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    assert load_spec(path).tune.lr[0] == 0.01


@pytest.mark.parametrize("written", ["4e2", "400.0", "4.0e+2"])
def test_a_whole_number_in_any_form_is_an_integer(tmp_path: Path, written: str) -> None:
    path = tmp_path / "whole.yaml"
    path.write_text(write_spec(tmp_path, small_spec()).read_text().replace("steps: 400", f"steps: {written}"))
    steps = load_spec(path).train.steps
    assert steps == 400 and isinstance(steps, int)


def test_three_mistakes_give_three_located_lines(tmp_path: Path) -> None:
    spec = small_spec()
    spec["train"]["steps"] = -5
    spec["models"][1]["depth"] = "deep"
    spec["tune"]["pick"] = "best"
    lines = errors_of(write_spec(tmp_path, spec))
    assert len(lines) == 3
    for line in lines:
        assert line.count("\n") == 0
    keys = [line.split(": ")[1] for line in lines]
    assert keys == ["train.steps", "models[1].depth", "tune.pick"]
    steps_line = write_spec(tmp_path, spec).read_text().splitlines().index("  steps: -5") + 1
    assert lines[0].startswith(f"{tmp_path / 'tiny.yaml'}:{steps_line}:")


def test_a_yaml_syntax_slip_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "slip.yaml"
    path.write_text("id: x\nmodels: [a, b\nchecks: []\n")
    (line,) = errors_of(path)
    assert line.startswith(f"{path}:3:") and "yaml:" in line


def test_tabs_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "tabs.yaml"
    path.write_text("id: x\ntrain:\n\tsteps: 3\n")
    (line,) = errors_of(path)
    assert "tabs" in line and line.startswith(f"{path}:3:")


def test_unknown_keys_suggest_the_nearest_name(tmp_path: Path) -> None:
    spec = small_spec()
    spec["train"]["stpes"] = 10
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "train.stpes: unknown key 'stpes'; did you mean 'steps'?" in line


def test_unknown_kinds_list_the_known_ones(tmp_path: Path) -> None:
    spec = small_spec()
    spec["models"][0]["kind"] = "transformer"
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "models[0]: unknown kind 'transformer'" in line and "linear_net" in line


def test_a_check_naming_a_missing_model_is_located_at_that_name(tmp_path: Path) -> None:
    spec = small_spec()
    spec["checks"] = [{"kind": "order", "metric": "final_gap", "models": ["shallow", "deeep"]}]
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "checks[0].models[1]: no model named 'deeep'; did you mean 'deep'?" in line


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(write_spec(tmp_path, small_spec()).read_text() + "seeds: [3]\n")
    (line,) = errors_of(path)
    assert "seeds: duplicate key" in line


def test_missing_required_keys_are_each_named(tmp_path: Path) -> None:
    spec = small_spec()
    del spec["loss"], spec["seeds"]
    lines = errors_of(write_spec(tmp_path, spec))
    assert {line.split(": ")[1] for line in lines} == {"loss", "seeds"}
    assert all("required key is missing" in line for line in lines)


def test_steps_must_be_a_multiple_of_record_every(tmp_path: Path) -> None:
    spec = small_spec()
    spec["train"]["record_every"] = 7
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "train: steps (400) must be a multiple of record_every (7)" in line


def test_non_finite_numbers_are_rejected(tmp_path: Path) -> None:
    spec = small_spec()
    spec["tune"]["lr"] = [float("nan")]
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "tune.lr[0]" in line


def test_a_profile_overrides_fields_and_its_mistakes_are_located_in_the_profile(tmp_path: Path) -> None:
    spec = small_spec(profiles={"long": {"train": {"steps": 800}}, "bad": {"train": {"stepz": 1}}})
    path = write_spec(tmp_path, spec)
    assert load_spec(path, "long").train.steps == 800
    (line,) = errors_of(path)
    profile_line = path.read_text().splitlines().index("      stepz: 1") + 1
    assert line.startswith(f"{path}:{profile_line}:") and "did you mean 'steps'" in line


def test_a_profiles_verdict_replaces_the_defaults_whole(tmp_path: Path) -> None:
    spec = small_spec(profiles={"paper": {"verdict": {"status": "by checks"}}})
    spec["verdict"] = {"status": "undecided", "observed": "what the short runs show"}
    path = write_spec(tmp_path, spec)
    assert load_spec(path).verdict.observed == "what the short runs show"
    assert load_spec(path, "paper").verdict.observed == ""  # not the default's text about other runs


def test_an_unknown_profile_is_one_line(tmp_path: Path) -> None:
    (line,) = errors_of(write_spec(tmp_path, small_spec()), profile="nope")
    assert "no profile 'nope'" in line


@pytest.mark.parametrize("content,expected", [(b"", "empty"), (b"id: \xff\xfe\n", "not UTF-8"), (b"- a\n- b\n", "expected a YAML mapping")])
def test_unusable_files_are_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    (line,) = errors_of(path)
    assert expected in line and line.startswith(str(path))


def test_a_directory_is_not_a_spec(tmp_path: Path) -> None:
    (line,) = errors_of(tmp_path)
    assert "is a directory" in line


def test_a_verdict_other_than_reproduced_must_say_what_we_observe(tmp_path: Path) -> None:
    (line,) = errors_of(write_spec(tmp_path, small_spec(verdict={"status": "not reproduced"})))
    assert "verdict: a verdict of 'not reproduced' needs `observed:`" in line


def test_a_key_yaml_reads_as_a_boolean_gets_a_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "on.yaml"
    path.write_text(write_spec(tmp_path, small_spec()).read_text() + "on: 3\n")
    (line,) = errors_of(path)
    assert "YAML reads this key as a bool" in line and "quote it" in line


def test_a_check_at_an_lr_outside_the_grid_is_located(tmp_path: Path) -> None:
    spec = small_spec(checks=[{"kind": "close", "models": ["shallow", "deep"], "tol": 0.1, "lr": 0.5}])
    (line,) = errors_of(write_spec(tmp_path, spec))
    assert "checks[0].lr: lr 0.5 is not in the lr grid of 'shallow', 'deep'" in line
