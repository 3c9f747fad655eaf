"""The batched optimisers give torch.optim's trajectories on the same small problems, in torch ops
and in the C kernels."""

from __future__ import annotations

import pytest
import torch

from overparam.engine import DeepLinear, run_loop
from overparam.engine.init import NormalInit, initial_layers
from overparam.engine.kernel import FusedKernel
from overparam.engine.optim import AdaDelta, AdaGrad, Adam, GradientDescent

CASES = [
    (GradientDescent(kind="gd"), lambda ps, lr, wd: torch.optim.SGD(ps, lr=lr, weight_decay=wd)),
    (AdaGrad(kind="adagrad"), lambda ps, lr, wd: torch.optim.Adagrad(ps, lr=lr, weight_decay=wd)),
    (AdaDelta(kind="adadelta"), lambda ps, lr, wd: torch.optim.Adadelta(ps, lr=lr, weight_decay=wd)),
    (Adam(kind="adam"), lambda ps, lr, wd: torch.optim.Adam(ps, lr=lr, weight_decay=wd)),
]
STEPS = 40


def torch_optim_losses(
    layers: list[torch.Tensor], make, X: torch.Tensor, y: torch.Tensor, p: float, lr: float, wd: float
) -> tuple[list[float], list[torch.Tensor]]:
    params = [W.clone().requires_grad_(True) for W in layers]
    opt = make(params, lr, wd)
    losses = []
    for step in range(STEPS + 1):
        w = params[0]
        for W in params[1:]:
            w = W @ w
        loss = (X @ w.squeeze(0) - y).abs().pow(p).mean()
        losses.append(float(loss.detach()))
        if step == STEPS:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses, params


@pytest.mark.parametrize("optimizer,make", CASES, ids=lambda c: getattr(c, "kind", ""))
@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_batched_optimizer_follows_torch_optim(optimizer, make, depth: int, wd: float, kernel: FusedKernel | None) -> None:
    gen = torch.Generator().manual_seed(depth)
    X = torch.randn(30, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(30, generator=gen, dtype=torch.float64)
    lrs = [1e-3, 3e-3]
    inits = [initial_layers(NormalInit(kind="normal", std=0.4), 5, depth, 4, seed=s) for s in range(2)]
    layers = [torch.stack([init[j] for init in inits]) for j in range(depth)]
    model = DeepLinear(layers, torch.tensor(lrs, dtype=torch.float64), wd, optimizer, kernel=kernel)
    trace = run_loop(model, X, y, 4.0, STEPS, 1, kernel=kernel)
    for r, (lr, init) in enumerate(zip(lrs, inits)):
        expected, params = torch_optim_losses(init, make, X, y, 4.0, lr, wd)
        assert torch.allclose(trace.losses[r], torch.tensor(expected, dtype=torch.float64), rtol=1e-11, atol=0)
    for W, reference in zip(layers, params):
        assert torch.allclose(W[1], reference.detach(), rtol=1e-10, atol=1e-13)


class TensorFlow1Adam(torch.optim.Optimizer):
    """TensorFlow 1's AdamOptimizer written out (tf.train.AdamOptimizer, training_ops ApplyAdam):
    α = lr·√(1 − β2^t)/(1 − β1^t), m += (g − m)(1 − β1), v += (g² − v)(1 − β2), W −= α·m/(√v + ε̂);
    L2 weight decay added to the gradient as torch.optim does."""

    def __init__(self, params, lr: float, weight_decay: float, eps: float) -> None:  # noqa: ANN001 - torch's params
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: ANN001 - torch's signature
        beta1, beta2 = 0.9, 0.999
        for group in self.param_groups:
            for W in group["params"]:
                state = self.state[W]
                if not state:
                    state.update(t=0, m=torch.zeros_like(W), v=torch.zeros_like(W))
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                g = W.grad + group["weight_decay"] * W
                m += (g - m) * (1 - beta1)
                v += (g * g - v) * (1 - beta2)
                alpha = group["lr"] * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
                W -= alpha * m / (v.sqrt() + group["eps"])


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_with_eps_hat_is_tensorflow_1s_adam(depth: int, wd: float, kernel: FusedKernel | None) -> None:
    """`eps_hat: true` follows TensorFlow 1's formula, and is not torch.optim's Adam: with ε = 1e-3
    (large, so that it shows on this small problem) the two differ, as ε weighs 1/√(1 − β2^t)
    (≈30× at the first step) more in TensorFlow's form."""
    gen = torch.Generator().manual_seed(depth)
    X = torch.randn(30, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(30, generator=gen, dtype=torch.float64)
    lrs = [1e-3, 3e-3]
    inits = [initial_layers(NormalInit(kind="normal", std=0.4), 5, depth, 4, seed=s) for s in range(2)]
    layers = [torch.stack([init[j] for init in inits]) for j in range(depth)]
    model = DeepLinear(layers, torch.tensor(lrs, dtype=torch.float64), wd, Adam(kind="adam", eps=1e-3, eps_hat=True), kernel=kernel)
    trace = run_loop(model, X, y, 4.0, STEPS, 1, kernel=kernel)
    for r, (lr, init) in enumerate(zip(lrs, inits)):
        tf1, _ = torch_optim_losses(init, lambda ps, lr, wd: TensorFlow1Adam(ps, lr, wd, eps=1e-3), X, y, 4.0, lr, wd)
        expected = torch.tensor(tf1, dtype=torch.float64)
        assert torch.allclose(trace.losses[r], expected, rtol=1e-11, atol=0)
        torch_adam, _ = torch_optim_losses(
            init, lambda ps, lr, wd: torch.optim.Adam(ps, lr=lr, weight_decay=wd, eps=1e-3), X, y, 4.0, lr, wd
        )
        assert not torch.allclose(trace.losses[r], torch.tensor(torch_adam, dtype=torch.float64), rtol=1e-6, atol=0)


def test_adams_stored_form_is_unchanged_by_the_eps_hat_key() -> None:
    """Run keys hash the optimizer's stored form: torch.optim's Adam must store as it did before
    `eps_hat` existed, so that runs already in a store are found."""
    assert Adam(kind="adam").model_dump() == {"kind": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert Adam(kind="adam", eps_hat=True).model_dump()["eps_hat"] is True
