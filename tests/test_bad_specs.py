"""A corpus of malformed specs: each gives located one-line errors and exit 2, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import small_spec
from overparam.cli import app

LOCATED = re.compile(r"^.+:\d+:\d+: .+")
VALID = yaml.safe_dump(small_spec(), sort_keys=False)


def mutated(**changes: object) -> str:
    spec = small_spec()
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is DELETE:
            del node[int(leaf) if isinstance(node, list) else leaf]
        elif isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return yaml.safe_dump(spec, sort_keys=False)


DELETE = object()

CORPUS: dict[str, str | bytes] = {
    "yaml_unclosed_list": "id: x\nmodels: [a, b\n",
    "yaml_bad_indent": "id: x\n  title: y\n",
    "yaml_tab": "id: x\ntrain:\n\tsteps: 3\n",
    "yaml_unclosed_quote": 'id: "x\n',
    "yaml_duplicate_key": VALID + "id: again\n",
    "yaml_boolean_key": VALID + "on: 3\n",
    "yaml_non_utf8": b"id: \xff\n",
    "empty_file": "",
    "only_comment": "# nothing\n",
    "top_level_list": "- a\n- b\n",
    "top_level_scalar": "42\n",
    "unknown_top_key": VALID + "colour: blue\n",
    "unknown_train_key": mutated(train__stpes=10),
    "unknown_model_key": mutated(models__0__depht=2),
    "unknown_check_key": mutated(checks__0__bound=3),
    "missing_id": mutated(id=DELETE),
    "missing_models": mutated(models=DELETE),
    "missing_checks": mutated(checks=DELETE),
    "missing_steps": mutated(train__steps=DELETE),
    "missing_model_depth": mutated(models__1__depth=DELETE),
    "wrong_type_steps": mutated(train__steps="many"),
    "fastest_without_gap": mutated(tune__pick="fastest"),
    "refine_with_smallest": mutated(tune__pick="smallest", tune__refine=2),
    "refine_zero": mutated(tune__refine=0),
    "unknown_check_role": mutated(checks__0__role="claimed"),
    "undecided_without_observed": mutated(verdict__status="undecided"),
    "paper_curve_wrong_length": mutated(paper__curve_steps=[100, 200], paper__curves={"shallow": [0.1]}),
    "paper_curve_unknown_model": mutated(paper__curve_steps=[100], paper__curves={"nobody": [0.1]}),
    "wrong_type_models": mutated(models="all of them"),
    "wrong_type_seeds": mutated(seeds="0,1"),
    "wrong_type_check": mutated(checks=["order"]),
    "unknown_model_kind": mutated(models__0__kind="transformer"),
    "unknown_check_kind": mutated(checks__0__kind="vibes"),
    "unknown_data_kind": mutated(data={"kind": "imagenet"}),
    "unknown_init_kind": mutated(train__init={"kind": "xavier"}),
    "unknown_optimizer_kind": mutated(train__optimizer={"kind": "lion"}),
    "adagrad_dividing_by_zero": mutated(train__optimizer={"kind": "adagrad", "eps": 0.0}),
    "missing_kind": mutated(models__0__kind=DELETE),
    "check_unknown_model": mutated(checks__0__model="deeep"),
    "duplicate_model_names": mutated(models__1__name="shallow"),
    "duplicate_seeds": mutated(seeds=[1, 1]),
    "empty_lr_grid": mutated(tune__lr=[]),
    "empty_models": mutated(models=[]),
    "empty_seeds": mutated(seeds=[]),
    "zero_steps": mutated(train__steps=0),
    "negative_steps": mutated(train__steps=-10),
    "zero_width": mutated(models__1__width=0),
    "negative_depth": mutated(models__1__depth=-2),
    "p_below_two": mutated(loss__p=0.5),
    "zero_lr": mutated(tune__lr=[0.0]),
    "negative_lr": mutated(tune__lr=[-0.1]),
    "nan_lr": mutated(tune__lr=[float("nan")]),
    "infinite_steps": mutated(train__steps=float("inf")),
    "steps_not_multiple": mutated(train__record_every=7),
    "huge_width": mutated(models__1__width=10**9),
    "huge_steps": mutated(train__steps=10**12),
    "huge_data": mutated(data={"kind": "synthetic", "n": 10**12, "d": 10**9}),
    "profile_unknown_key": mutated(profiles={"long": {"train": {"stepz": 5}}}),
    "profile_bad_value": mutated(profiles={"long": {"train": {"steps": -1}}}),
    "bad_id": mutated(id="Not An Id!"),
    "verdict_without_observation": mutated(verdict={"status": "not reproduced"}),
    "bound_without_bounds": mutated(checks=[{"kind": "bound", "metric": "final_gap", "model": "deep"}]),
    "steps_to_gap_without_gap": mutated(checks=[{"kind": "bound", "metric": "steps_to_gap", "model": "deep", "hi": 3}]),
    "end_to_end_not_recorded": mutated(checks=[{"kind": "close", "models": ["deep", "shallow"], "curve": "end_to_end", "tol": 0.1}]),
    "batch_loss_without_a_penalty": mutated(checks=[{"kind": "bound", "metric": "final_batch_loss", "model": "deep", "hi": 3}]),
    "at_step_not_recorded": mutated(checks=[{"kind": "bound", "metric": "final_gap", "model": "deep", "hi": 3, "at_step": 7}]),
    # Refused before anything expands it: nine levels of nine aliases is 9^9 nodes.
    "yaml_alias_bomb": "id: bomb\na: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")),
    "yaml_alias": VALID.replace("seeds:\n- 0\n- 1\n", "seeds: &s [0, 1]\nmore: *s\n"),
    "yaml_merge_key": VALID.replace("loss:\n  kind: lp\n  p: 4\n", "loss:\n  <<: {kind: lp}\n  p: 4\n"),
    "synthetic_noise_inf": mutated(data={"kind": "synthetic", "n": 64, "d": 6, "noise": float("inf")}),
    "lr_as_string": VALID.replace("- 0.01", '- "0.01"'),
    "depth_as_string": mutated(models__1__depth="3"),
    "lr_nan": mutated(tune={"lr": [float("nan")]}),
    "seeds_repeated": mutated(seeds=[0, 0]),
    "model_names_repeated": mutated(models__1__name="shallow"),
    "steps_fractional": VALID.replace("steps: 400", "steps: 400.5"),
}


def lines_of(result) -> list[str]:  # noqa: ANN001 - a CliRunner result
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_malformed_spec_gives_located_lines_and_exit_2(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    content = CORPUS[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = lines_of(result)
    assert lines and all(LOCATED.match(line) and line.startswith(str(path)) for line in lines), result.output


def test_the_corpus_holds_at_least_40_cases() -> None:
    assert len(CORPUS) >= 40


def test_a_folder_without_specs_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])  # a folder is read as its *.yaml (test_papercuts.py)
    assert result.exit_code == 2 and result.output.strip() == f"{tmp_path}: holds no *.yaml specs"


MUTATIONS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
PATHS = [
    "id",
    "title",
    "train__steps",
    "train__record_every",
    "train__init",
    "loss__p",
    "models__0__depth",
    "models__1__width",
    "tune__lr",
    "seeds",
    "checks__0__hi",
    "data__n",
    "models__0__kind",
    "checks__0__kind",
]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(PATHS), value=MUTATIONS)
def test_any_mutation_of_a_valid_spec_is_accepted_or_located(tmp_path: Path, where: str, value: object) -> None:
    path = tmp_path / "mutant.yaml"
    path.write_text(mutated(**{where: value}))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert all(LOCATED.match(line) for line in lines_of(result)), result.output


@pytest.mark.parametrize(
    "content,expected",
    [
        (mutated(models__1__depth="3"), "YAML reads '3' as text"),
        (mutated(checks=[{"kind": "close", "models": ["deep", "shallow"], "tolerance": 0.1}]), "did you mean 'tol'?"),
        (VALID.replace("loss:\n  kind: lp\n  p: 4\n", "loss:\n  <<: {kind: lp}\n  p: 4\n"), "merge keys (<<) are not supported"),
    ],
)
def test_the_message_says_what_yaml_read_and_what_to_write(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(content)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and expected in result.output, result.output
