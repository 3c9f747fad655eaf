"""Initial weights for one run, drawn from that run's own seed (never from a shared stream),
so a run's numbers do not depend on which other runs share its batch."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, Field, TypeAdapter

from overparam.strict import STRICT


class NormalInit(BaseModel):
    """Near-zero init: every entry of every layer iid N(0, std²)."""

    model_config = STRICT
    kind: Literal["normal"]
    std: float = Field(0.01, gt=0.0, le=10.0)


class BalancedInit(BaseModel):
    """Exactly balanced layers (W_{j+1}ᵀW_{j+1} = W_jW_jᵀ) whose product is `scale`·v, v a random
    unit vector drawn before anything width-dependent, so every width and the end-to-end model
    start from the same W_e."""

    model_config = STRICT
    kind: Literal["balanced"]
    scale: float = Field(0.1, gt=0.0, le=100.0, description="‖W_e‖ at step 0")


class IdentityInit(BaseModel):
    """id-init: layers 1..N−1 are (rectangular) identities, the output layer is N(0, std²)."""

    model_config = STRICT
    kind: Literal["identity"]
    std: float = Field(0.01, gt=0.0, le=10.0, description="std of the output layer")


Init = Annotated[NormalInit | BalancedInit | IdentityInit, Field(discriminator="kind")]
_INIT = TypeAdapter(Init)


def parse_init(data: dict[str, Any]) -> Init:
    """An init config back from its stored dict form."""
    return _INIT.validate_python(data)


def layer_shapes(d: int, depth: int, width: int) -> list[tuple[int, int]]:
    """(out, in) of W_1..W_N for a scalar-output net: d → width → … → width → 1."""
    dims = [d] + [width] * (depth - 1) + [1]
    return [(dims[j + 1], dims[j]) for j in range(depth)]


def initial_layers(init: Init, d: int, depth: int, width: int, seed: int) -> list[torch.Tensor]:
    """W_1..W_N in float64 on the CPU for one run."""
    gen = torch.Generator().manual_seed(seed)
    shapes = layer_shapes(d, depth, width)
    if isinstance(init, NormalInit):
        return [init.std * torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes]
    if isinstance(init, IdentityInit):
        eyes = [torch.eye(*shape, dtype=torch.float64) for shape in shapes[:-1]]
        return eyes + [init.std * torch.randn(shapes[-1], generator=gen, dtype=torch.float64)]
    # Balanced: W_1 = s·u_1vᵀ, W_j = s·u_ju_{j−1}ᵀ, W_N = s·u_{N−1}ᵀ with unit u_j and s = scale^{1/N}.
    v = _unit(torch.randn(d, generator=gen, dtype=torch.float64))
    s = init.scale ** (1.0 / depth)
    left = [_unit(torch.randn(out, generator=gen, dtype=torch.float64)) for out, _ in shapes[:-1]]
    left.append(torch.ones(1, dtype=torch.float64))
    right = [v] + left[:-1]
    return [s * torch.outer(u, w) for u, w in zip(left, right)]


def initial_end_to_end(init: Init, d: int, seed: int) -> torch.Tensor:
    """W_e (d,) for a depth-1 model driven by an end-to-end rule; balanced matches the nets."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(init, BalancedInit):
        return init.scale * _unit(torch.randn(d, generator=gen, dtype=torch.float64))
    return init.std * torch.randn(d, generator=gen, dtype=torch.float64)


def product_of(layers: list[torch.Tensor]) -> torch.Tensor:
    """W_e = W_N⋯W_1 as a (d,) vector, each entry a correctly rounded sum (math.fsum) of exact
    products: the same bits on every CPU, unlike a BLAS product."""
    a = [1.0]
    for W in reversed(layers):
        rows = W.tolist()
        a = [math.fsum(a[i] * rows[i][k] for i in range(len(rows))) for k in range(len(rows[0]))]
    return torch.tensor(a, dtype=torch.float64)


def _unit(v: torch.Tensor) -> torch.Tensor:
    unit: torch.Tensor = v / v.norm()
    return unit
