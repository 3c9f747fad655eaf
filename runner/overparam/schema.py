"""The published JSON Schema of a spec (`overparam schema`): what the validator accepts.

Pydantic writes each kind's fields; the models add the rules between fields (strict.strict_with:
as JSON Schema keywords where JSON Schema can state them, in words under `x-rules` where it
cannot); this module adds what a profile may override. tests/test_schema.py checks every case of
the bad-spec corpora and every shipped spec against both the schema and the validator.
"""

from __future__ import annotations

import copy
from typing import Any, Union

from pydantic import TypeAdapter

from overparam.registry import KINDS

DOCUMENT = (
    "An overparam spec: a YAML file holding one mapping, with JSON's data model. YAML beyond JSON is refused: "
    "anchors and aliases, merge keys (<<), repeated keys, keys that are not text, .nan and .inf. A whole number in "
    "any form (400, 4e2, 400.0) is an integer. `experiment` chooses the kind (default regression)."
)
RULE_KEYWORDS = ("if", "then", "else", "anyOf", "allOf", "oneOf", "not", "x-rules")  # rules of a whole document


def published_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file of any kind."""
    specs = tuple(kind.spec for kind in KINDS.values())
    union: Any = Union[specs]  # noqa: UP007 - a union built at run time, of the registered kinds
    schema = TypeAdapter(union).json_schema()
    definitions = schema["$defs"]
    for spec in specs:
        profiles = definitions[spec.__name__]["properties"]["profiles"]
        override = _override_of({"$ref": f"#/$defs/{spec.__name__}"}, definitions)
        profiles["patternProperties"] = {name: override for name in profiles["patternProperties"]}  # a profile name is a name (strict.py)
        profiles["additionalProperties"] = False
        profiles["description"] = "name -> overrides of this spec's keys: mappings merge key by key, any other value is replaced"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "overparam spec", "description": DOCUMENT, **schema}


def kind_schema(kind: str) -> dict[str, Any]:
    """The published schema of one kind's specs (`experiment: <kind>`), with only the definitions it uses."""
    whole = published_schema()
    name = KINDS[kind].spec.__name__
    used: dict[str, Any] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in used:
            continue
        used[current] = whole["$defs"][current]
        todo += [ref.rsplit("/", 1)[-1] for ref in _refs(used[current])]
    return {**{k: v for k, v in whole.items() if k not in ("$defs", "oneOf", "anyOf", "discriminator")}, "$ref": f"#/$defs/{name}", "$defs": used}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _override_of(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema of a deep-merge override of `node`: every key optional, down through mappings
    (lists are replaced whole, so their items keep their full schema). The rules between keys
    apply to the merged spec, which the validator checks as a whole (`x-rules` says so)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        override = f"{name}Override"
        if override not in definitions:
            definitions[override] = {}  # placed before recursing: a model may contain itself
            definitions[override] = _override_of(copy.deepcopy(definitions[name]), definitions)
        return {**node, "$ref": f"#/$defs/{override}"}
    branches = node.get("anyOf") or node.get("oneOf")
    if branches is not None and "properties" not in node:
        rest = {key: value for key, value in node.items() if key not in ("anyOf", "oneOf", "discriminator")}
        return {**rest, "anyOf": [_override_of(branch, definitions) for branch in branches]}
    if node.get("type") == "object":
        out = {key: value for key, value in node.items() if key not in RULE_KEYWORDS + ("required",)}
        if "properties" in node:
            out["properties"] = {key: _override_of(value, definitions) for key, value in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = _override_of(node["additionalProperties"], definitions)
        return out
    return node
