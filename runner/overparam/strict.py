"""The one pydantic configuration of every spec model: unknown keys are errors, models are
frozen, NaN and infinities are refused, and nothing is coerced (YAML's "3" stays a string and is
refused where a number belongs).

A model whose validator checks more than its fields' types says so with `strict_with`: the rules
JSON Schema can state as keywords (if/then, anyOf, …), and in words (`x-rules`) those it cannot
(between a field and other parts of the spec), so that `overparam schema` describes exactly what
the validator accepts (tests/test_schema.py holds the two together).
"""

from __future__ import annotations

from typing import Any

from pydantic.config import ConfigDict, JsonDict

STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


def strict_with(keywords: dict[str, Any] | None = None, rules: tuple[str, ...] = ()) -> ConfigDict:
    """STRICT, publishing `keywords` and `rules` in the model's JSON Schema."""
    extra: dict[str, Any] = dict(keywords or {})
    if rules:
        extra["x-rules"] = list(rules)
    return ConfigDict(**STRICT, json_schema_extra=extra)


def given(*keys: str, kind: str = "number") -> dict[str, Any]:
    """JSON Schema: at least one of `keys` is present and not null."""
    return {"anyOf": [{"required": [key], "properties": {key: {"type": kind}}} for key in keys]}


def when(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: `then` holds wherever `condition` does."""
    return {"if": condition, "then": then}


def equals(key: str, value: Any) -> dict[str, Any]:
    """JSON Schema condition: `key` is present and equals `value` (one of `value` for a tuple)."""
    test = {"enum": list(value)} if isinstance(value, tuple) else {"const": value}
    return {"required": [key], "properties": {key: test}}


UNIQUE: JsonDict = {"uniqueItems": True}
