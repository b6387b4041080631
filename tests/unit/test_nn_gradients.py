"""The analytic gradients of every network variant equal central finite differences."""

import itertools

import numpy as np
import pytest

from service.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, apply
from service.nn.batches import Batches, evaluate
from service.nn.losses import LOSS_OUTPUTS, LOSSES
from service.nn.network import (
    Architecture,
    Workspace,
    forward,
    gradient,
    init_params,
    loss_value,
    params_from_theta,
)
from service.nn.training import TrainingConfig

H = 1e-6
COMBINATIONS = [
    (act, out, loss, bias)
    for act, out, loss, bias in itertools.product(
        sorted(ACTIVATIONS), OUTPUT_ACTIVATIONS, sorted(LOSSES), (True, False)
    )
    if out in LOSS_OUTPUTS[loss]
]


def _loss_at(theta, arch, x, y, loss):
    work = Workspace(arch, len(x)).load(x, y)
    forward(params_from_theta(arch, theta), work)
    return loss_value(work, loss)


def _numeric_grad(theta, arch, x, y, loss):
    g = np.zeros_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += H
        minus[i] -= H
        g[i] = (_loss_at(plus, arch, x, y, loss) - _loss_at(minus, arch, x, y, loss)) / (2 * H)
    return g


def _problem(arch, n=7):
    """Return (params, x, y): the first seeded draw whose pre-activations avoid the kink."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        params = init_params(arch, rng)
        for b in params["b"]:
            b[...] = rng.normal(0, 0.5, b.shape)
        x = rng.normal(0, 1.5, size=(n, 2))
        y = rng.integers(0, 2, size=(n, 1)).astype(np.float64)
        work = Workspace(arch, len(x)).load(x)
        forward(params, work)
        if min(np.abs(z).min() for z in work.z[:-1]) > 1e-3:
            return params, x, y
    raise AssertionError("no draw kept the pre-activations away from the kink")


def _grads(params, work, x, y, arch, loss):
    """Return the analytic gradient of the loss at params for the rows x, computed in work."""
    forward(params, work.load(x, y))
    return gradient(params, work, loss, params_from_theta(arch, np.zeros_like(params["theta"])))


@pytest.mark.parametrize("activation,output,loss,bias", COMBINATIONS)
def test_backward_matches_finite_differences(activation, output, loss, bias):
    arch = Architecture((2, 3, 3, 1), activation, output, bias)
    params, x, y = _problem(arch)
    grads = _grads(params, Workspace(arch, len(x)), x, y, arch, loss)
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, loss)
    np.testing.assert_allclose(grads["theta"], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation,bias", [("sigmoid", True), ("relu", False)])
def test_backward_of_a_single_row_matches_finite_differences(activation, bias):
    arch = Architecture((2, 3, 3, 1), activation, "sigmoid", bias)
    params, x, y = _problem(arch, n=1)
    grads = _grads(params, Workspace(arch, 1), x, y, arch, "mse")
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, "mse")
    np.testing.assert_allclose(grads["theta"], numeric, rtol=1e-5, atol=1e-8)


def test_a_reused_workspace_gives_what_a_fresh_one_gives():
    """Backward overwrites parts of the workspace; the next forward must not depend on them."""
    arch = Architecture((2, 3, 3, 1), "tanh", "sigmoid", True)
    params, x, y = _problem(arch)
    work = Workspace(arch, len(x))
    first = _grads(params, work, x, y, arch, "mse")["theta"].copy()
    _grads(params, work, x[::-1].copy(), y[::-1], arch, "bce")
    again = _grads(params, work, x, y, arch, "mse")["theta"]
    np.testing.assert_array_equal(again, first)
    fresh = _grads(params, Workspace(arch, len(x)), x, y, arch, "mse")["theta"]
    np.testing.assert_array_equal(again, fresh)


@pytest.mark.parametrize("block_rows", [1, 3, 6])
@pytest.mark.parametrize("loss,bias", [("mse", True), ("bce", True), ("mse", False)])
def test_a_batch_in_blocks_has_the_gradient_loss_and_hits_of_one_block(block_rows, loss, bias):
    arch = Architecture((2, 3, 3, 1), "tanh", "sigmoid", bias)
    params, x, y = _problem(arch)
    one, blocks = Batches(arch, x, y, block_rows=len(x)), Batches(arch, x, y, block_rows=block_rows)
    assert len(list(blocks.whole()[1])) == -(-len(x) // block_rows)
    one_grads, block_grads = (params_from_theta(arch, np.zeros_like(params["theta"]))
                              for _ in range(2))
    expected = evaluate(params, one.whole(), loss, one_grads, measure=True, count_right=True)
    got = evaluate(params, blocks.whole(), loss, block_grads, measure=True, count_right=True)
    np.testing.assert_allclose(block_grads["theta"], one_grads["theta"], rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx(expected[0], rel=1e-12) and got[1] == expected[1]
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, loss)
    np.testing.assert_allclose(block_grads["theta"], numeric, rtol=1e-5, atol=1e-8)


def test_wb_is_w_over_b_in_theta():
    arch = Architecture((2, 3, 1))
    params = init_params(arch, np.random.default_rng(0))
    for Wb, W, b in zip(params["Wb"], params["W"], params["b"], strict=True):
        np.testing.assert_array_equal(Wb, np.vstack([W, b]))
        assert np.shares_memory(Wb, params["theta"])
    unbiased = params_from_theta(Architecture((2, 3, 1), bias=False), np.zeros(9))
    assert [Wb.shape for Wb in unbiased["Wb"]] == [(2, 3), (3, 1)]


def test_every_valid_combination_is_checked():
    assert len(COMBINATIONS) == len(ACTIVATIONS) * 2 * 3  # bce has no identity output


def test_bce_needs_a_sigmoid_output():
    arch = Architecture(output_activation="identity")
    with pytest.raises(ValueError, match="sigmoid output"):
        TrainingConfig(loss="bce").check(arch)


def test_bce_is_finite_for_saturated_outputs():
    bce = LOSSES["bce"][0]
    z = np.array([[800.0], [-800.0]])
    y = np.array([[0.0], [1.0]])
    a = 1 / (1 + np.exp(-np.clip(z, -500, 500)))
    assert bce(z, a, y) == pytest.approx(800.0)


def test_sigmoid_saturates_without_overflow():
    sigmoid = ACTIVATIONS["sigmoid"][0]
    with np.errstate(all="raise"):
        a = apply(sigmoid, np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(a, [0.0, 0.5, 1.0])
