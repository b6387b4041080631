"""A workspace replays the NumPy calls of a pass: the replay must follow the weights it is given."""

import numpy as np
import pytest

from service.nn.activations import ACTIVATIONS, apply
from service.nn.network import Architecture, init_params
from service.nn.optimizers import OPTIMIZERS
from service.nn.passes import Workspace, forward, gradient
from service.nn.training import TrainingConfig, fit


def _fresh_forward(params, arch, x):
    return forward(params, Workspace(arch, 1, len(x)).load(x)).copy()


def test_a_plan_sees_weights_updated_in_place_and_new_weights():
    arch, rng = Architecture(), np.random.default_rng(0)
    x = rng.normal(size=(9, 2))
    first, second = init_params(arch, rng), init_params(arch, rng)
    work = Workspace(arch, 1, len(x)).load(x)
    forward(first, work)
    first["theta"] *= 0.5  # the update every optimizer makes: in place
    np.testing.assert_array_equal(forward(first, work), _fresh_forward(first, arch, x))
    np.testing.assert_array_equal(forward(second, work), _fresh_forward(second, arch, x))
    assert not np.allclose(forward(first, work).copy(), forward(second, work))


def test_a_plan_follows_the_gradient_buffer_and_the_batch_size():
    arch, rng = Architecture(), np.random.default_rng(1)
    x, y = rng.normal(size=(6, 2)), rng.integers(0, 2, 6).astype(float)
    params = init_params(arch, rng)
    work = Workspace(arch, 1, len(x)).load(x, y)
    grads = [init_params(arch, rng) for _ in range(2)]
    forward(params, work)
    gradient(params, work, "mse", grads[0])
    forward(params, work)
    gradient(params, work, "mse", grads[1], n=12)  # half the batch: half the mean's weight
    np.testing.assert_allclose(grads[1]["theta"], grads[0]["theta"] / 2, rtol=1e-12)
    forward(params, work)
    gradient(params, work, "bce", grads[1])
    assert not np.allclose(grads[1]["theta"], grads[0]["theta"])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_keep_float32(name):
    z = np.linspace(-3, 3, 7, dtype=np.float32)
    assert apply(ACTIVATIONS[name][0], z).dtype == np.float32
    np.testing.assert_allclose(apply(ACTIVATIONS[name][0], z),
                               apply(ACTIVATIONS[name][0], z.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_float32_training_stays_float32(optimizer):
    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    config = TrainingConfig(optimizer=optimizer, dtype="float32", epochs=50, starts=1)
    result = fit(Architecture(), x, y, config)
    assert result.params["theta"].dtype == np.float32
    assert np.isfinite(result.loss)
