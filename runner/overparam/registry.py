"""The experiment kinds, by the value of a spec's `experiment:` key (default: regression).

Adding a kind is a subpackage of `overparam.kinds` (its spec, its runs, its report, and a
`kind.py` with `KIND`) and one line here; the pipeline, the loader, `schema` and `list` read
this registry and know no kind.
"""

from __future__ import annotations

from typing import Any

from overparam.kind import Kind
from overparam.kinds.convnet.kind import KIND as CONVNET
from overparam.kinds.maps.kind import KIND as MAPS
from overparam.kinds.regression.kind import KIND as REGRESSION
from overparam.kinds.theory.kind import KIND as THEORY

DEFAULT = REGRESSION.name
KINDS: dict[str, Kind] = {kind.name: kind for kind in (REGRESSION, CONVNET, THEORY, MAPS)}


def kind_of(raw: dict[str, Any]) -> Kind:
    """The kind a spec document declares; an unknown `experiment:` is left to the default kind's
    validator, which names the values it takes."""
    return KINDS.get(str(raw.get("experiment", DEFAULT)), KINDS[DEFAULT])
