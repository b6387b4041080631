"""The analytic gradients of every network variant equal central finite differences.

Also for weight decay (the gradient of the l2 penalty), and for stacks of networks: each
network of a stack gets, bit for bit, the gradient it gets alone.
"""

import itertools

import numpy as np
import pytest

from service.nn.activations import ACTIVATIONS, ON_FLOATS, OUTPUT_ACTIVATIONS, apply
from service.nn.batches import Batches, evaluate
from service.nn.losses import LOSS_OUTPUTS, LOSSES
from service.nn.network import Architecture, init_params, join, params_from_theta, spread, take
from service.nn.optimizers import add_weight_decay
from service.nn.passes import Workspace, forward, gradient, loss_sums
from service.nn.training import TrainingConfig

H = 1e-6
COMBINATIONS = [
    (act, out, loss, bias)
    for act, out, loss, bias in itertools.product(
        sorted(ACTIVATIONS), OUTPUT_ACTIVATIONS, sorted(LOSSES), (True, False)
    )
    if out in LOSS_OUTPUTS[loss]
]


def _loss_at(theta, arch, x, y, loss, l2=0.0):
    """Return the mean loss of the one network theta on (x, y), plus (l2 / 2) sum(W^2)."""
    params = params_from_theta(arch, theta)
    work = Workspace(arch, 1, len(x)).load(x, y)
    forward(params, work)
    penalty = 0.5 * l2 * sum(float(np.sum(W * W)) for W in params["W"])
    return float(loss_sums(work, loss)[0]) / len(x) + penalty


def _numeric_grad(theta, arch, x, y, loss, l2=0.0):
    g = np.zeros_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += H
        minus[i] -= H
        up, down = _loss_at(plus, arch, x, y, loss, l2), _loss_at(minus, arch, x, y, loss, l2)
        g[i] = (up - down) / (2 * H)
    return g


def _problem(arch, n=7, seed=0):
    """Return (params, x, y): the first seeded draw whose pre-activations avoid the kink."""
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        params = init_params(arch, rng)
        for b in params["b"]:
            b[...] = rng.normal(0, 0.5, b.shape)
        x = rng.normal(0, 1.5, size=(n, 2))
        y = rng.integers(0, 2, size=n).astype(np.float64)
        work = Workspace(arch, 1, len(x)).load(x)
        forward(params, work)
        if min(np.abs(z).min() for z in work.z[:-1]) > 1e-3:
            return params, x, y
    raise AssertionError("no draw kept the pre-activations away from the kink")


def _zeros_like(arch, params):
    return params_from_theta(arch, np.zeros_like(params["theta"]))


def _grads(params, work, x, y, arch, loss):
    """Return the analytic gradient of the loss at params for the rows x, computed in work."""
    forward(params, work.load(x, y))
    return gradient(params, work, loss, _zeros_like(arch, params))


@pytest.mark.parametrize("activation,output,loss,bias", COMBINATIONS)
def test_backward_matches_finite_differences(activation, output, loss, bias):
    arch = Architecture((2, 3, 3, 1), activation, output, bias)
    params, x, y = _problem(arch)
    grads = _grads(params, Workspace(arch, 1, len(x)), x, y, arch, loss)
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, loss)
    np.testing.assert_allclose(grads["theta"], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation,bias", [("sigmoid", True), ("relu", False)])
def test_backward_of_a_single_row_matches_finite_differences(activation, bias):
    arch = Architecture((2, 3, 3, 1), activation, "sigmoid", bias)
    params, x, y = _problem(arch, n=1)
    grads = _grads(params, Workspace(arch, 1, 1), x, y, arch, "mse")
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, "mse")
    np.testing.assert_allclose(grads["theta"], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation,loss,bias", [("sigmoid", "bce", True), ("tanh", "mse", True),
                                                  ("relu", "bce", False)])
@pytest.mark.parametrize("l2", [1e-3, 0.5])
def test_weight_decay_is_the_gradient_of_the_l2_penalty_on_the_weights(activation, loss, bias,
                                                                      l2):
    arch = Architecture((2, 3, 3, 1), activation, "sigmoid", bias)
    params, x, y = _problem(arch)
    g = _grads(params, Workspace(arch, 1, len(x)), x, y, arch, loss)["theta"]
    theta = params["theta"]
    add_weight_decay(theta, g, spread(arch, np.array([l2]), biases=False), np.empty_like(theta))
    numeric = _numeric_grad(theta.copy(), arch, x, y, loss, l2)
    np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)
    without = _numeric_grad(theta.copy(), arch, x, y, loss)
    assert not np.allclose(g, without, rtol=1e-3)  # the penalty is in the gradient


def _stack(arch, m, seed):
    """Return (stack params, [each network alone]): m random networks, biases nonzero."""
    alone = []
    for k in range(m):
        rng = np.random.default_rng([seed, k])
        params = init_params(arch, rng)
        for b in params["b"]:
            b[...] = rng.normal(0, 0.5, b.shape)
        alone.append(params)
    return params_from_theta(arch, join(arch, [p["theta"] for p in alone])), alone


@pytest.mark.parametrize("activation,output,loss,bias", COMBINATIONS[::3])
@pytest.mark.parametrize("shared", [True, False])
def test_each_network_of_a_stack_gets_its_gradient_alone_bit_for_bit(activation, output, loss,
                                                                     bias, shared):
    arch, m, n = Architecture((2, 3, 4, 1), activation, output, bias), 5, 9
    stack, alone = _stack(arch, m, seed=7)
    rng = np.random.default_rng(8)
    xs, ys = rng.normal(0, 1.5, (m, n, 2)), rng.integers(0, 2, (m, n)).astype(np.float64)
    if shared:
        xs, ys = np.broadcast_to(xs[0], xs.shape), np.broadcast_to(ys[0], ys.shape)
    rows = (xs[0], ys[0]) if shared else (xs, ys)
    work = Workspace(arch, m, n, shared=shared).load(*rows)
    y_hat = forward(stack, work).copy()
    losses = loss_sums(work, loss)
    grads = gradient(stack, work, loss, _zeros_like(arch, stack))
    for k, params in enumerate(alone):
        one = Workspace(arch, 1, n).load(xs[k], ys[k])
        np.testing.assert_array_equal(forward(params, one)[0, 0], y_hat[0, k])
        assert loss_sums(one, loss)[0] == losses[k]
        alone_grads = gradient(params, one, loss, _zeros_like(arch, params))["theta"]
        np.testing.assert_array_equal(alone_grads, take(arch, grads["theta"], [k]))


def test_a_stacks_gradient_matches_finite_differences():
    arch, m = Architecture((2, 3, 3, 1), "tanh", "sigmoid", True), 3
    stack, alone = _stack(arch, m, seed=3)
    params, x, y = _problem(arch, seed=4)
    work = Workspace(arch, m, len(x)).load(x, y)
    forward(stack, work)
    grads = gradient(stack, work, "bce", _zeros_like(arch, stack))["theta"]
    for k, one in enumerate(alone):
        numeric = _numeric_grad(one["theta"].copy(), arch, x, y, "bce")
        np.testing.assert_allclose(take(arch, grads, [k]), numeric, rtol=1e-5, atol=1e-8)


def test_a_reused_workspace_gives_what_a_fresh_one_gives():
    """Backward overwrites parts of the workspace; the next forward must not depend on them."""
    arch = Architecture((2, 3, 3, 1), "tanh", "sigmoid", True)
    params, x, y = _problem(arch)
    work = Workspace(arch, 1, len(x))
    first = _grads(params, work, x, y, arch, "mse")["theta"].copy()
    _grads(params, work, x[::-1].copy(), y[::-1], arch, "bce")
    again = _grads(params, work, x, y, arch, "mse")["theta"]
    np.testing.assert_array_equal(again, first)
    fresh = _grads(params, Workspace(arch, 1, len(x)), x, y, arch, "mse")["theta"]
    np.testing.assert_array_equal(again, fresh)


@pytest.mark.parametrize("block_rows", [1, 3, 6])
@pytest.mark.parametrize("loss,bias", [("mse", True), ("bce", True), ("mse", False)])
def test_a_batch_in_blocks_has_the_gradient_loss_and_hits_of_one_block(block_rows, loss, bias):
    arch = Architecture((2, 3, 3, 1), "tanh", "sigmoid", bias)
    params, x, y = _problem(arch)
    one, blocks = Batches(arch, x, y, block_rows=len(x)), Batches(arch, x, y, block_rows=block_rows)
    assert len(list(blocks.whole()[1])) == -(-len(x) // block_rows)
    one_grads, block_grads = _zeros_like(arch, params), _zeros_like(arch, params)
    expected = evaluate(params, one.whole(), loss, one_grads, measure=True, count_right=True)
    got = evaluate(params, blocks.whole(), loss, block_grads, measure=True, count_right=True)
    np.testing.assert_allclose(block_grads["theta"], one_grads["theta"], rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx(expected[0], rel=1e-12) and got[1] == expected[1]
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, loss)
    np.testing.assert_allclose(block_grads["theta"], numeric, rtol=1e-5, atol=1e-8)


def test_wb_is_w_over_b_in_theta_for_each_network():
    arch = Architecture((2, 3, 1))
    params = init_params(arch, np.random.default_rng(0), m=2)
    for Wb, W, b in zip(params["Wb"], params["W"], params["b"], strict=True):
        for k in range(2):
            np.testing.assert_array_equal(Wb[:, k], np.vstack([W[k], b[k]]))
        assert np.shares_memory(Wb, params["theta"])
    one = init_params(arch, np.random.default_rng(0))
    np.testing.assert_array_equal(take(arch, params["theta"], [0]), one["theta"])
    unbiased = params_from_theta(Architecture((2, 3, 1), bias=False), np.zeros(9))
    assert [Wb.shape for Wb in unbiased["Wb"]] == [(2, 1, 3), (3, 1, 1)]


def test_every_valid_combination_is_checked():
    assert len(COMBINATIONS) == len(ACTIVATIONS) * 2 * 3  # bce has no identity output


def test_bce_needs_a_sigmoid_output():
    arch = Architecture(output_activation="identity")
    with pytest.raises(ValueError, match="sigmoid output"):
        TrainingConfig(loss="bce").check(arch)


def test_bce_is_finite_for_saturated_outputs():
    bce = LOSSES["bce"][0]
    z = np.array([[[800.0, -800.0, 3.0]]])
    y = np.array([[[0.0, 1.0, 1.0]]])
    a = 1 / (1 + np.exp(-np.clip(z, -500, 500)))
    expected = 1600.0 + np.log1p(np.exp(-3.0))
    assert bce(z, a, y, np.empty_like(z), np.empty_like(z))[0, 0] == pytest.approx(expected,
                                                                                 rel=1e-12)


def test_sigmoid_saturates_to_0_and_1_and_keeps_tiny_probabilities():
    sigmoid = ACTIVATIONS["sigmoid"][0]
    z = np.array([-1000.0, -745.0, -100.0, 0.0, 100.0, 1000.0])
    with np.errstate(over="ignore"):  # e^1000 overflows to inf: 1 / (1 + inf) is 0
        a = apply(sigmoid, z)
    np.testing.assert_allclose(a, [0.0, 0.0, np.exp(-100.0), 0.5, 1.0, 1.0], rtol=1e-15)
    assert [ON_FLOATS["sigmoid"](v) for v in z.tolist()] == pytest.approx(a.tolist(), rel=1e-12)
