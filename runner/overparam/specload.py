"""Loading a spec file: YAML with positions → the right spec type → every problem as one
located line `file:line:col: key.path: message`, all of them, never a traceback."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from overparam.claim import Claim
from overparam.errors import OverparamError
from overparam.registry import kind_of
from overparam.yamlpos import KeyPath, Positions, dotted, load_yaml


def spec_type(raw: dict[str, Any]) -> type[Claim]:
    """The schema a document follows, chosen by its `experiment` key (default: regression)."""
    return kind_of(raw).spec


def load_spec(path: Path, profile: str | None = None) -> Claim:
    """Parse and validate `path`, with profile `profile` applied; OverparamError lists every problem."""
    return load_located(path, profile)[0]


def load_located(path: Path, profile: str | None = None) -> tuple[Claim, dict[int, str]]:
    """The spec as load_spec gives it, and `file:line:col` of each of its checks where the file
    states it (in its profile, if it overrides the checks), from one read of the file: a spec
    edited during a run does not change what the run reports about it."""
    raw, positions = load_yaml(path)
    base = _validated(raw, path, positions, lambda at: at)
    if profile is None:
        spec = base
    elif profile not in base.profiles:
        known = ", ".join(base.profiles) or "none"
        raise OverparamError(f"{path}: no profile {profile!r} (profiles: {known}); drop --profile or add it under profiles")
    else:
        spec = _with_profile(raw, profile, path, positions)
    located = {}
    for index in range(len(spec.checks)):
        inside = ("profiles", profile, "checks", index) if profile else None
        line, col = _position(positions, inside if inside in positions else ("checks", index))
        located[index] = f"{path}:{line}:{col}"
    return spec, located


def check_all_profiles(path: Path) -> Claim:
    """Validate the spec and every profile in it; raise once with all problems."""
    raw, positions = load_yaml(path)
    base = _validated(raw, path, positions, lambda at: at)
    problems: list[str] = []
    for name in base.profiles:
        try:
            _with_profile(raw, name, path, positions)
        except OverparamError as err:
            problems.extend(err.lines)
    if problems:
        raise OverparamError(*problems)
    return base


def _with_profile(raw: dict[str, Any], name: str, path: Path, positions: Positions) -> Claim:
    overrides = raw["profiles"][name] or {}
    merged = deep_merged(raw, overrides)
    if "verdict" in overrides:
        # A verdict is one statement about one budget: the default's `observed` text must not
        # stay under a profile's own status (it would describe runs the profile did not make).
        merged["verdict"] = copy.deepcopy(overrides["verdict"])

    def origin(at: KeyPath) -> KeyPath:
        inside = _has_path(overrides, at)
        return ("profiles", name) + at if inside else at

    return _validated(merged, path, positions, origin)


def _validated(raw: dict[str, Any], path: Path, positions: Positions, origin: Any) -> Claim:
    schema = spec_type(raw)
    try:
        spec = schema.model_validate(raw)
    except ValidationError as err:
        raise OverparamError(*(_error_line(e, raw, path, positions, origin) for e in err.errors())) from None
    problems = spec.reference_errors()
    if problems:
        raise OverparamError(*(_located(path, positions, origin(at), at, msg) for at, msg in problems))
    return spec


def _error_line(error: Any, raw: Any, path: Path, positions: Positions, origin: Any) -> str:
    at = _data_path(error["loc"], raw)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = _unknown_key_message(str(at[-1]), spec_type(raw))
    elif error["type"] == "missing":
        message = "required key is missing; add it"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown kind {error['input'].get('kind')!r}; expected one of {error['ctx']['expected_tags']}"
    elif error["type"] == "union_tag_not_found":
        message = "needs a `kind` key"
    elif error["type"] in ("int_type", "float_type", "bool_type", "int_from_float"):
        message += _yaml_type_hint(error["input"])
    return _located(path, positions, origin(at), at, message)


def _yaml_type_hint(value: Any) -> str:
    """Why YAML gave the validator this type, and how to write what was meant."""
    if isinstance(value, str):
        return f"; YAML reads {value!r} as text (it is quoted or not a number): remove the quotes or fix the number"
    return ""


def _data_path(loc: tuple[Any, ...], raw: Any) -> KeyPath:
    """Pydantic's loc without union tags: only the steps that exist in the data (plus a missing leaf)."""
    at: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            at.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            at.append(part)
        elif i == len(loc) - 1 and isinstance(part, (str, int)):
            at.append(part)  # a missing key: shown, located at its parent
    return tuple(at)


def _located(path: Path, positions: Positions, where: KeyPath, shown: KeyPath, message: str) -> str:
    line, col = _position(positions, where)
    return f"{path}:{line}:{col}: {dotted(shown)}: {message}"


def _position(positions: Positions, where: KeyPath) -> tuple[int, int]:
    """(line, column) of the key path, or of its nearest parent that the file has."""
    for n in range(len(where), -1, -1):
        if where[:n] in positions:
            return positions[where[:n]]
    return 1, 1


def _unknown_key_message(key: str, schema: type[BaseModel]) -> str:
    names = _all_field_names(schema)
    if key in names:
        return f"{key!r} is not a key here; remove it or move it where it belongs"
    hint = difflib.get_close_matches(key, sorted(names), n=1)
    hint = hint or sorted(n for n in names if len(n) >= 3 and (key.startswith(n) or n.startswith(key)))[:1]  # tolerance → tol
    return f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "; remove it")


def _all_field_names(model: type[BaseModel]) -> set[str]:
    schema = model.model_json_schema()
    names: set[str] = set(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        names.update(definition.get("properties", {}))
    return names


def deep_merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied: mappings merge key by key, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _has_path(tree: Any, at: KeyPath) -> bool:
    for part in at:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return False
    return True
