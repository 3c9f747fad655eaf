"""The one pydantic configuration of every spec model: unknown keys are errors, models are
frozen, NaN and infinities are refused, and nothing is coerced (YAML's "3" stays a string and is
refused where a number belongs).

A model whose validator checks more than its fields' types says so with `strict_with`: the rules
JSON Schema can state as keywords (if/then, anyOf, …), and in words (`x-rules`) those it cannot
(between a field and other parts of the spec), so that `overparam schema` describes exactly what
the validator accepts (tests/test_schema.py holds the two together).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
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

# Names are data, never paths: a spec id and a profile name become file names, so they hold only
# lowercase letters, digits, `_` and `-` (no `/`, no `..`) and stay short enough for any file
# system; a model name is shown in tables and legends, so it is one printable line without `|` or
# backticks. The README's Guarantees list these rules.
FILE_NAME = r"[a-z0-9][a-z0-9_\-]*"
SpecId = Annotated[str, Field(pattern=f"^{FILE_NAME}$", max_length=60)]
ProfileName = Annotated[str, Field(pattern=f"^{FILE_NAME}$", max_length=40)]
ModelName = Annotated[str, Field(pattern=r"^[^|`\\\x00-\x1f\x7f-\x9f\u2028\u2029]+$", min_length=1, max_length=60)]
Line = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$", min_length=1, max_length=200)]  # a title or a statement: one table cell
