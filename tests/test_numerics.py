"""The engine's closed forms against torch.autograd, and the exact optimum against known forms."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from conftest import UCI_DIR, needs_uci
from overparam.engine import DeepLinear, EndToEnd, run_loop
from overparam.engine.init import BalancedInit, IdentityInit, NormalInit, initial_end_to_end, initial_layers, layer_shapes, product_of
from overparam.engine.kernel import FusedKernel
from overparam.losses import exact_lp_value, lp_optimum, lp_residual_grad, lp_value


@pytest.fixture(autouse=True)
def _float64_by_default():
    """Numerics are checked in float64; restored afterwards so other test modules keep float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def problem(n: int = 40, d: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen)
    y = X @ torch.randn(d, generator=gen) + 0.3 * torch.randn(n, generator=gen)
    return X, y


def autograd_grads(layers: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor, p: float, wd: float) -> list[torch.Tensor]:
    params = [W.clone().requires_grad_(True) for W in layers]
    w = params[0]
    for W in params[1:]:
        w = W @ w
    loss = (X @ w.squeeze(0) - y).abs().pow(p).mean() + 0.5 * wd * sum((W * W).sum() for W in params)
    return list(torch.autograd.grad(loss, params))


def one_engine_step(
    layers: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor, p: float, lr: float, wd: float, kernel: FusedKernel | None
) -> list[torch.Tensor]:
    batched = [W.clone().unsqueeze(0) for W in layers]
    model = DeepLinear(batched, torch.tensor([lr]), wd, kernel=kernel)
    w = model.end_to_end()
    g = torch.mm(lp_residual_grad(torch.mm(w, X.T) - y, p), X)
    model.descend(g)
    return [W.squeeze(0) for W in batched]


@pytest.mark.parametrize("depth,width", [(1, 1), (2, 1), (2, 5), (3, 4), (4, 9), (6, 3)])
@pytest.mark.parametrize("p", [2.0, 3.0, 4.0, 6.5])
def test_engine_step_is_gradient_descent_with_autograd_gradients(depth: int, width: int, p: float, kernel: FusedKernel | None) -> None:
    X, y = problem(seed=depth * 10 + width)
    layers = initial_layers(NormalInit(kind="normal", std=0.6), X.shape[1], depth, width, seed=depth + width)
    lr = 1e-3
    after = one_engine_step(layers, X, y, p, lr, 0.0, kernel)
    for before, new, grad in zip(layers, after, autograd_grads(layers, X, y, p, 0.0)):
        engine_grad = (before - new) / lr
        assert torch.allclose(engine_grad, grad, rtol=1e-10, atol=1e-10 * float(grad.abs().max()))


@pytest.mark.parametrize("depth", [1, 3])
def test_weight_decay_matches_an_l2_penalty_of_half_lambda(depth: int, kernel: FusedKernel | None) -> None:
    X, y = problem()
    layers = initial_layers(NormalInit(kind="normal", std=0.5), X.shape[1], depth, 4, seed=1)
    lr, wd = 1e-3, 0.07
    after = one_engine_step(layers, X, y, 4.0, lr, wd, kernel)
    for before, new, grad in zip(layers, after, autograd_grads(layers, X, y, 4.0, wd)):
        assert torch.allclose((before - new) / lr, grad, rtol=1e-10, atol=1e-12)


def test_runs_in_one_batch_do_not_interact() -> None:
    X, y = problem()
    lrs = [1e-4, 3e-4, 1e-3]
    inits = [initial_layers(NormalInit(kind="normal", std=0.5), X.shape[1], 3, 4, seed=s) for s in range(3)]
    together = run_loop(DeepLinear([torch.stack([i[j] for i in inits]) for j in range(3)], torch.tensor(lrs), 0.0), X, y, 4.0, 50, 10)
    for r, (lr, init) in enumerate(zip(lrs, inits)):
        alone = run_loop(DeepLinear([W.clone().unsqueeze(0) for W in init], torch.tensor([lr]), 0.0), X, y, 4.0, 50, 10)
        assert torch.isfinite(alone.losses).all()
        assert torch.allclose(together.losses[r], alone.losses[0], rtol=1e-12, atol=0)


def test_a_diverging_run_is_recorded_and_does_not_disturb_the_others() -> None:
    X, y = problem()
    inits = [initial_layers(NormalInit(kind="normal", std=0.3), X.shape[1], 2, 4, seed=s) for s in range(2)]
    model = DeepLinear([torch.stack([i[j] for i in inits]) for j in range(2)], torch.tensor([1e-3, 10.0]), 0.0)
    trace = run_loop(model, X, y, 4.0, 100, 10)
    assert trace.diverged_at[0] is None and trace.diverged_at[1] is not None
    assert torch.isfinite(trace.losses[0]).all()
    assert torch.isnan(trace.losses[1, -1])


def test_depth1_end_to_end_rule_is_plain_gradient_descent(kernel: FusedKernel | None) -> None:
    X, y = problem()
    w0 = initial_end_to_end(NormalInit(kind="normal", std=0.2), X.shape[1], seed=0)
    rule = run_loop(EndToEnd(w0.clone().unsqueeze(0), torch.tensor([1e-3]), 0.0, depth=1, kernel=kernel), X, y, 4.0, 30, 10, kernel=kernel)
    net = run_loop(DeepLinear([w0.clone().view(1, 1, -1)], torch.tensor([1e-3]), 0.0, kernel=kernel), X, y, 4.0, 30, 10, kernel=kernel)
    assert torch.allclose(rule.losses, net.losses, rtol=1e-13)


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_the_end_to_end_rule_in_the_kernel_is_rule_12(fused: FusedKernel, depth: int, wd: float) -> None:
    from overparam.engine.end_to_end import rule12_direction

    X, y = problem()
    gen = torch.Generator().manual_seed(depth)
    w = torch.randn(3, X.shape[1], generator=gen)
    w[1] = 0.0  # no direction to project on: Pr_w(g) = 0
    g = torch.randn(3, X.shape[1], generator=gen)
    lr = torch.tensor([1e-3, 1e-2, 3e-2])
    model = EndToEnd(w.clone(), lr, wd, depth=depth, kernel=fused)
    model.descend(g)
    expected = w * (1.0 - lr.view(-1, 1) * wd * depth) - lr.view(-1, 1) * rule12_direction(w, g, depth)
    assert torch.allclose(model.w, expected, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("depth,width", [(2, 1), (2, 10), (3, 6), (5, 8)])
def test_balanced_init_is_exactly_balanced_and_matches_the_end_to_end_start(depth: int, width: int) -> None:
    d = 7
    init = BalancedInit(kind="balanced", scale=0.3)
    layers = initial_layers(init, d, depth, width, seed=4)
    for lower, upper in zip(layers, layers[1:]):
        assert torch.allclose(upper.T @ upper, lower @ lower.T, atol=1e-15)
    product = layers[0]
    for W in layers[1:]:
        product = W @ product
    assert torch.allclose(product.squeeze(0), initial_end_to_end(init, d, seed=4), atol=1e-15)


def test_an_emulation_with_a_width_starts_where_the_random_net_starts() -> None:
    """`end_to_end` with `width` starts at the product of the same-seed net's random layers (each
    entry a correctly rounded sum, so the same bits on every CPU), and without `width` its shape
    (part of the run key) is what it was before the key existed."""
    from overparam.sweep.models import EndToEndModel

    init = NormalInit(kind="normal", std=0.3)
    layers = initial_layers(init, 7, 3, 6, seed=5)
    product = (layers[2] @ layers[1] @ layers[0]).squeeze(0)
    assert torch.allclose(product_of(layers), product, rtol=1e-14, atol=1e-16)
    assert not torch.allclose(product_of(layers), initial_end_to_end(init, 7, seed=5))
    assert EndToEndModel(name="e", kind="end_to_end", depth=3).shape() == {"kind": "end_to_end", "depth": 3, "rule": 12}
    assert EndToEndModel(name="e", kind="end_to_end", depth=3, width=6).shape()["width"] == 6


def test_identity_init_has_identity_hidden_layers() -> None:
    layers = initial_layers(IdentityInit(kind="identity", std=0.01), 7, 4, 5, seed=0)
    assert [tuple(W.shape) for W in layers] == layer_shapes(7, 4, 5)
    assert torch.equal(layers[1], torch.eye(5)) and torch.equal(layers[0], torch.eye(5, 7))


def test_least_squares_optimum_matches_the_normal_equations() -> None:
    X, y = problem(n=60, d=9)
    w, value = lp_optimum(X, y, 2.0)
    w_ne = torch.linalg.solve(X.T @ X, X.T @ y)
    assert torch.allclose(w, w_ne, rtol=1e-10)
    assert value == pytest.approx(float(((X @ w_ne - y) ** 2).mean()), rel=1e-12)


@pytest.mark.parametrize("p", [3.0, 4.0, 6.0])
def test_newton_optimum_is_stationary_and_no_perturbation_improves_it(p: float) -> None:
    X, y = problem(n=80, d=6, seed=2)
    X = X * torch.logspace(0, -3, 6)  # badly conditioned, like the real features
    w, value = lp_optimum(X, y, p)
    grad = X.T @ lp_residual_grad(X @ w - y, p)
    assert float(grad.norm()) < 1e-10
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        nudged = w + 1e-4 * torch.randn(6, generator=gen)
        assert float(lp_value(X @ nudged - y, p)) >= value


@pytest.mark.parametrize("p", [2.0, 3.0, 4.0, 6.0])
def test_exact_lp_value_is_the_rational_value_rounded_once(p: float) -> None:
    X, y = problem(n=30, d=5, seed=3)
    X[0, 0], X[1, 2], y[2] = 0.0, 5e-310, -0.0  # a zero, a subnormal, a signed zero
    w = torch.randn(5, generator=torch.Generator().manual_seed(4)) * torch.logspace(3, -3, 5)
    exact = sum(
        abs(sum((Fraction(x) * Fraction(wj) for x, wj in zip(row, w.tolist())), Fraction(0)) - Fraction(yi)) ** int(p)
        for row, yi in zip(X.tolist(), y.tolist())
    ) / len(y)
    assert exact_lp_value(X, y, w, p) == float(exact)
    assert exact_lp_value(X, y, w, p) == pytest.approx(float(lp_value(X @ w - y, p)), rel=1e-13)


@needs_uci
def test_the_optimum_of_the_real_data_has_the_same_bits_at_any_thread_count() -> None:
    """w*'s last bits follow LAPACK's threads; L*, read by every gap in every report, must not
    (a float sum of the loss at w* moved by 21 ulps between 1 and 2 threads)."""
    from overparam.data.uci import UciGasData, load_uci_gas

    data = load_uci_gas(UciGasData(kind="uci_gas"), UCI_DIR)
    threads = torch.get_num_threads()
    optima = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            optima.append([lp_optimum(data.X, data.y, p)[1] for p in (2.0, 4.0)])
    finally:
        torch.set_num_threads(threads)
    assert optima[0] == optima[1]


def test_lp_residual_gradient_matches_autograd() -> None:
    r = torch.randn(50, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    for p in (2.0, 2.5, 4.0, 7.0):
        (auto,) = torch.autograd.grad(lp_value(r, p), r)
        assert torch.allclose(lp_residual_grad(r.detach(), p), auto, rtol=1e-12)


def test_gram_objective_equals_the_data_pass_for_l2(kernel: FusedKernel | None) -> None:
    from overparam.engine.loop import DataPass, objective_for

    X, y = problem(n=200, d=9)
    w = torch.randn(4, 9, generator=torch.Generator().manual_seed(5))
    gram = objective_for(X, y, 2.0, kernel)
    assert "Gram" in type(gram).__name__
    loss_gram, g_gram = gram(w, True)
    loss_data, g_data = DataPass(X, y, 2.0)(w, True)
    assert torch.allclose(loss_gram, loss_data, rtol=1e-12)
    assert torch.allclose(g_gram, g_data, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("p", [2.0, 3.0, 4.0, 6.5])
def test_the_objective_is_the_lp_loss_with_its_autograd_gradient(kernel: FusedKernel | None, p: float) -> None:
    """Through X or through the moments, in torch ops or in the kernel: L = mean |Xw − y|^p and
    ∇L¹ = dL/dw (the loop's gradient of the depth-1 problem)."""
    from overparam.engine.loop import objective_for

    X, y = problem(n=57, d=11, seed=int(p))
    w = (0.4 * torch.randn(5, 11, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    loss, grad = objective_for(X, y, p, kernel)(w.detach(), True)
    want = (w @ X.T - y).abs().pow(p).mean(dim=1)
    (auto,) = torch.autograd.grad(want.sum(), w)
    assert torch.allclose(loss, want.detach(), rtol=1e-13)
    assert torch.allclose(grad, auto, rtol=1e-11, atol=1e-12 * float(auto.abs().max()))


def test_warmup_form_differs_from_gd_on_w1_omega2_by_exactly_the_eta_squared_term(kernel: FusedKernel | None) -> None:
    from overparam.engine import WarmupForm

    X, y = problem()
    layers = initial_layers(NormalInit(kind="normal", std=0.5), X.shape[1], 2, 1, seed=3)
    w1, omega = layers[0][0], layers[1][0, 0]
    lr = 1e-2
    net = [W.clone().unsqueeze(0) for W in layers]
    gd = DeepLinear(net, torch.tensor([lr]), 0.0)
    form = WarmupForm((omega * w1).unsqueeze(0).clone(), omega.view(1).clone(), torch.tensor([lr]), kernel=kernel)
    g = torch.mm(lp_residual_grad(torch.mm(gd.end_to_end(), X.T) - y, 4.0), X)
    gd.descend(g)
    form.descend(g)
    w_gd = (net[1][0, 0, 0] * net[0][0, 0]).unsqueeze(0)
    eta_squared_term = lr**2 * float(g[0] @ w1) * omega * g
    assert torch.allclose(w_gd - form.w, eta_squared_term, rtol=1e-9, atol=1e-15)
