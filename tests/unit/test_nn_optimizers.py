"""One step of each optimizer against numbers worked out by hand, with and without weight decay."""

import numpy as np
import pytest

from service.nn.optimizers import OPTIMIZERS, add_weight_decay
from service.nn.training import TrainingConfig


def _step(name, theta, g, steps=1, lr=None, decay=None, **hp):
    """Return (theta, state) after steps of the named optimizer along the constant gradient g.

    lr: each weight's learning rate (default: the config's everywhere); decay: each weight's
    l2, added to g before every step."""
    init, step = OPTIMIZERS[name]
    theta, config = np.array(theta, dtype=np.float64), TrainingConfig(**hp)
    rates = np.full_like(theta, config.learning_rate) if lr is None else np.array(lr, float)
    state = init(theta, rates, config)
    for _ in range(steps):
        grad = np.array(g, dtype=np.float64)
        if decay is not None:
            add_weight_decay(theta, grad, np.array(decay, float), np.empty_like(theta))
        step(theta, grad, state)
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


def test_sgd_with_weight_decay_by_hand():
    # g + l2 W = 0.5 + 0.1 * 2 = 0.7 on the weight; the bias (l2 0) sees 0.5 only.
    theta, _ = _step("sgd", [2.0, 2.0], [0.5, 0.5], decay=[0.1, 0.0], learning_rate=0.1)
    np.testing.assert_allclose(theta, [2.0 - 0.07, 2.0 - 0.05])


def test_momentum_with_weight_decay_two_steps_by_hand():
    # v1 = -0.1 (0.5 + 0.2 * 1) = -0.07, theta1 = 0.93
    # v2 = 0.9 * -0.07 - 0.1 (0.5 + 0.2 * 0.93) = -0.063 - 0.0686 = -0.1316, theta2 = 0.7984
    theta, state = _step("momentum", [1.0], [0.5], steps=2, decay=[0.2], learning_rate=0.1)
    np.testing.assert_allclose(state["v"], [-0.1316])
    np.testing.assert_allclose(theta, [0.7984])


def test_adam_with_weight_decay_two_steps_by_hand():
    g0, l2, lr, b1, b2, eps = 0.5, 0.3, 0.01, 0.9, 0.999, 1e-8
    m = v = 0.0
    theta = 1.0
    for t in (1, 2):
        g = g0 + l2 * theta  # the gradient of the penalised loss, fed to Adam
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)) ** 0.5 + eps)
    got, _ = _step("adam", [1.0], [g0], steps=2, decay=[l2], learning_rate=lr)
    assert got[0] == pytest.approx(theta, rel=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_weight_keeps_its_own_learning_rate(name):
    """Two networks side by side, each at its rate, step as each does alone (bit for bit)."""
    g = [0.5, -2.0, 0.25, 1.5]
    both, _ = _step(name, [1.0, 2.0, 1.0, 2.0], g, steps=3, lr=[0.1, 0.1, 0.02, 0.02])
    first, _ = _step(name, [1.0, 2.0], g[:2], steps=3, learning_rate=0.1)
    second, _ = _step(name, [1.0, 2.0], g[2:], steps=3, learning_rate=0.02)
    np.testing.assert_array_equal(both, np.concatenate([first, second]))
