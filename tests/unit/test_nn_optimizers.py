"""One step of each optimizer against numbers worked out by hand."""

import numpy as np
import pytest

from service.nn.optimizers import OPTIMIZERS
from service.nn.training import TrainingConfig


def _step(name, theta, g, steps=1, **hp):
    init, step = OPTIMIZERS[name]
    theta, config = np.array(theta, dtype=np.float64), TrainingConfig(**hp)
    state = init(theta, config)
    for _ in range(steps):
        step(theta, np.array(g, dtype=np.float64), state, config)
    return theta, state


def test_sgd_step():
    theta, _ = _step("sgd", [1.0, -2.0], [0.5, -1.0], learning_rate=0.1)
    np.testing.assert_allclose(theta, [0.95, -1.9])


def test_momentum_two_steps():
    # v1 = -0.1 * 0.5 = -0.05; theta1 = 0.95
    # v2 = 0.9 * -0.05 - 0.1 * 0.5 = -0.095; theta2 = 0.855
    theta, state = _step("momentum", [1.0], [0.5], steps=2, learning_rate=0.1, momentum=0.9)
    np.testing.assert_allclose(state["v"], [-0.095])
    np.testing.assert_allclose(theta, [0.855])


def test_adam_first_step_moves_by_the_learning_rate():
    # m1 = 0.1 g, v1 = 0.001 g^2; m_hat = g, v_hat = g^2; step = lr g / (|g| + eps)
    theta, state = _step("adam", [1.0, 1.0], [0.5, -2.0], learning_rate=0.01)
    np.testing.assert_allclose(theta, [1.0 - 0.01, 1.0 + 0.01], rtol=1e-7)
    np.testing.assert_allclose(state["m"], [0.05, -0.2])
    np.testing.assert_allclose(state["v"], [0.00025, 0.004])
    assert state["t"] == 1


def test_adam_second_step_by_hand():
    g, lr, b1, b2, eps = 0.5, 0.01, 0.9, 0.999, 1e-8
    m = v = 0.0
    theta = 1.0
    for t in (1, 2):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)) ** 0.5 + eps)
    got, _ = _step("adam", [1.0], [g], steps=2, learning_rate=lr)
    assert got[0] == pytest.approx(theta, rel=1e-12)
