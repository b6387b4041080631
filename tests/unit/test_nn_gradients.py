"""The analytic gradients of every network variant equal central finite differences."""

import itertools

import numpy as np
import pytest

from service.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from service.nn.losses import LOSS_OUTPUTS, LOSSES
from service.nn.network import (
    Architecture,
    backward,
    forward,
    init_params,
    loss_value,
    output_delta,
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
    params = params_from_theta(arch, theta)
    y_hat, cache = forward(params, x, arch)
    return loss_value(y_hat, cache, y, loss)


def _numeric_grad(theta, arch, x, y, loss):
    g = np.zeros_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += H
        minus[i] -= H
        g[i] = (_loss_at(plus, arch, x, y, loss) - _loss_at(minus, arch, x, y, loss)) / (2 * H)
    return g


def _problem(arch):
    """Return (params, x, y): the first seeded draw whose pre-activations avoid the kink."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        params = init_params(arch, rng)
        for b in params["b"]:
            b[...] = rng.normal(0, 0.5, b.shape)
        x = rng.normal(0, 1.5, size=(7, 2))
        y = rng.integers(0, 2, size=(7, 1)).astype(np.float64)
        _, (_, zs) = forward(params, x, arch)
        if min(np.abs(z).min() for z in zs[:-1]) > 1e-3:
            return params, x, y
    raise AssertionError("no draw kept the pre-activations away from the kink")


@pytest.mark.parametrize("activation,output,loss,bias", COMBINATIONS)
def test_backward_matches_finite_differences(activation, output, loss, bias):
    arch = Architecture((2, 3, 3, 1), activation, output, bias)
    params, x, y = _problem(arch)
    y_hat, cache = forward(params, x, arch)
    grads = params_from_theta(arch, np.zeros_like(params["theta"]))
    backward(params, cache, output_delta(y_hat, cache, y, arch, loss), arch, grads)
    numeric = _numeric_grad(params["theta"].copy(), arch, x, y, loss)
    np.testing.assert_allclose(grads["theta"], numeric, rtol=1e-5, atol=1e-8)


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
        a = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(a, [0.0, 0.5, 1.0])
