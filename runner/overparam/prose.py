"""Numbers typed by hand in a verdict's prose, traced to the report's own tables.

A spec's `observed:` text is written by a person; every number in it must be one the report's
tables print, at the precision the text prints it: 1.36 matches a table's 1.364, 0.063 its
0.0633, 6.5–7e4 its 65,000 and 70,000, 920k its 920000, 1e-4 its 0.0001. A number of one
significant digit must match exactly (1e6 is 1,000,000; 5 is not 5.3). Counts up to 10 (seeds,
layers, batches) are exempt. A percentage is a derived number no table prints: quote the two
numbers it compares instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A number, or a range "a–b" sharing one exponent ("6.5–7e4"), with a "k" (thousands) or "%" after it.
# Not part of a word or symbol: ℓ4, W_e, 3-layer's digits stand alone only where a boundary allows.
_NUMBER = re.compile(
    r"(?<![\w.^/])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s?[–-]\s?(\d+(?:\.\d+)?)(?![\d,]))?(e[-+−]?\d+)?(k)?(%)?(?![\w^])"
)
_POWER = re.compile(r"\d+\^\([^)]*\)")  # 2^(1/4): a factor's formula, not a measured number
COUNT_LIMIT = 10


@dataclass(frozen=True)
class Typed:
    text: str  # as printed, e.g. "6.5–7e4"
    value: float
    digits: int  # significant digits printed
    percent: bool


def typed_numbers(text: str) -> list[Typed]:
    """Every number in `text`, a range giving two."""
    found = []
    for match in _NUMBER.finditer(_POWER.sub(" ", text)):
        first, second, exponent, thousands, percent = match.groups()
        for raw in (first, second):
            if raw is None:
                continue
            raw = raw.replace(",", "")
            value = float(raw + (exponent or "").replace("−", "-")) * (1000 if thousands else 1)
            mantissa = raw.replace(".", "").lstrip("0") or "0"
            found.append(Typed(match.group(0), value, len(mantissa), bool(percent)))
    return found


def untraced_numbers(prose: str, report: str) -> list[str]:
    """The numbers of `prose` that no table of `report` prints at their precision, as printed."""
    tables = "\n".join(line for line in report.splitlines() if line.startswith("|"))
    printed = [t.value for t in typed_numbers(tables)]
    missing = []
    for typed in typed_numbers(prose):
        if not typed.percent and typed.value == int(typed.value) and typed.value <= COUNT_LIMIT:
            continue
        if typed.percent or not any(_agrees(value, typed) for value in printed):
            missing.append(typed.text)
    return list(dict.fromkeys(missing))


def _agrees(value: float, typed: Typed) -> bool:
    if typed.digits == 1 or value == 0:
        return math.isclose(value, typed.value, rel_tol=1e-12)
    scale = typed.digits - 1 - math.floor(math.log10(abs(value)))
    return math.isclose(round(value, scale), typed.value, rel_tol=1e-12)
