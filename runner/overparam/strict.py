"""The one pydantic configuration of every spec model: unknown keys are errors, models are
frozen, NaN and infinities are refused, and nothing is coerced (YAML's "3" stays a string and is
refused where a number belongs, as `overparam schema` says), so the validator and the published
JSON Schema accept the same documents."""

from pydantic import ConfigDict

STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)
