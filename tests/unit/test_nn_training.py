"""fit(): the lab's network learns the lab's sets, reproducibly, and stops when told."""

import math

import numpy as np
import pytest

from service.nn import batches, datasets
from service.nn.history import MAX_ROWS
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import Diverged, TrainingConfig, fit

LAB = Architecture()  # 2-4-4-1, sigmoid everywhere, with bias


@pytest.mark.parametrize("seed", range(8))
def test_defaults_fit_xor_perfectly(seed):
    x, y = datasets.xor()
    assert fit(LAB, x, y, TrainingConfig(seed=seed)).accuracy == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_defaults_fit_linear_perfectly(seed):
    x, y = datasets.linear(100, seed)
    assert fit(LAB, x, y, TrainingConfig(seed=seed)).accuracy == 1.0


def test_defaults_generalise_to_held_out_linear_points():
    x_test, y_test = datasets.linear(1000, seed=10_000)
    scores = []
    for seed in range(5):
        model, _ = Model.train(LAB, *datasets.linear(100, seed), TrainingConfig(seed=seed))
        scores.append(np.mean(model.predict(x_test)[1] == y_test))
    assert np.mean(scores) >= 0.98, scores


def test_plain_gradient_descent_is_worse_on_xor_than_the_defaults():
    """The lab's plain full-batch descent gets stuck on XOR for many seeds: defaults matter."""
    x, y = datasets.xor()
    plain = TrainingConfig(optimizer="sgd", loss="mse", learning_rate=0.5, starts=1, epochs=3000)
    perfect = [fit(LAB, x, y, TrainingConfig(**{**plain.to_dict(), "seed": s})).accuracy == 1
               for s in range(6)]
    assert not all(perfect)


def test_same_seed_same_history_bit_for_bit():
    x, y = datasets.linear(60, seed=3)
    config = TrainingConfig(epochs=400, batch_size=16, seed=5)
    a, b = fit(LAB, x, y, config), fit(LAB, x, y, config)
    assert a.history == b.history
    np.testing.assert_array_equal(a.params["theta"], b.params["theta"])
    c = fit(LAB, x, y, TrainingConfig(epochs=400, batch_size=16, seed=6))
    assert c.history != a.history


def test_huge_learning_rate_diverges_instead_of_producing_a_model():
    x, y = datasets.linear(50, seed=1)
    arch = Architecture(activation="identity", output_activation="identity")
    config = TrainingConfig(loss="mse", optimizer="sgd", learning_rate=1e6, epochs=200)
    with pytest.raises(Diverged, match="diverged"):
        fit(arch, x, y, config)


def test_divergence_between_measured_epochs_is_caught_at_the_next_one():
    x, y = datasets.linear(50, seed=1)
    arch = Architecture(activation="identity", output_activation="identity")
    config = TrainingConfig(loss="mse", optimizer="sgd", learning_rate=1e6, epochs=50_000,
                            starts=1)
    with pytest.raises(Diverged) as caught:
        fit(arch, x, y, config)
    assert caught.value.epoch <= 50  # the history records every 50th epoch


@pytest.mark.parametrize("batch_size", [7, None])
def test_measuring_every_epoch_leaves_the_training_unchanged(batch_size):
    x, y = datasets.linear(40, seed=2)
    config = TrainingConfig(epochs=2000, batch_size=batch_size, starts=1)
    seen = []
    watched = fit(LAB, x, y, config, on_progress=lambda *row: seen.append(row), report_every=1)
    plain = fit(LAB, x, y, config)
    assert [epoch for epoch, _, _, _ in seen] == list(range(2000))
    np.testing.assert_array_equal(watched.params["theta"], plain.params["theta"])
    assert watched.history == plain.history


@pytest.mark.parametrize("batch_size", [None, 20])
def test_training_in_small_blocks_gives_the_weights_and_history_of_whole_batches(
        batch_size, monkeypatch):
    x, y = datasets.linear(60, seed=7)
    config = TrainingConfig(epochs=300, batch_size=batch_size, starts=2, probe_epochs=50,
                            tolerance=0.01)
    whole = fit(LAB, x, y, config)
    monkeypatch.setattr(batches, "BLOCK_ROWS", 7)  # 60 rows: 9 blocks, 20 rows: 3 blocks
    blocked = fit(LAB, x, y, config)
    np.testing.assert_allclose(blocked.params["theta"], whole.params["theta"], rtol=1e-9)
    assert (blocked.epochs_run, blocked.stop_reason) == (whole.epochs_run, whole.stop_reason)
    assert blocked.history["epoch"] == whole.history["epoch"]
    np.testing.assert_allclose(blocked.history["loss"], whole.history["loss"], rtol=1e-9)
    assert blocked.history["accuracy"] == whole.history["accuracy"]
    model = Model(LAB, blocked.params, config)
    scores = model.predict_proba(x)
    monkeypatch.undo()
    np.testing.assert_allclose(scores, model.predict_proba(x), rtol=1e-12)


def test_stops_at_target_accuracy_with_the_weights_it_measured():
    x, y = datasets.xor()
    result = fit(LAB, x, y, TrainingConfig(target_accuracy=1.0, epochs=5000))
    assert result.stop_reason == "target_accuracy"
    assert result.epochs_run < 5000
    assert result.accuracy == 1.0
    assert result.history["epoch"][-1] == result.epochs_run


def test_stops_under_the_loss_tolerance():
    x, y = datasets.xor()
    result = fit(LAB, x, y, TrainingConfig(tolerance=0.05, epochs=5000))
    assert result.stop_reason == "tolerance"
    assert result.loss < 0.05


def test_stops_when_patience_runs_out():
    x, y = datasets.xor()
    config = TrainingConfig(optimizer="sgd", learning_rate=0.0, patience=20, epochs=5000, starts=1)
    result = fit(LAB, x, y, config)
    assert result.stop_reason == "patience"
    assert result.epochs_run == 20


def test_callback_sees_progress_and_its_weights_and_can_stop_training():
    x, y = datasets.xor()
    seen, theta = [], []

    def on_progress(epoch, loss, acc, weights):
        seen.append((epoch, loss, acc))
        theta.append(weights())
        return epoch >= 300

    result = fit(LAB, x, y, TrainingConfig(epochs=5000), on_progress=on_progress)
    assert [e for e, _, _ in seen] == [0, 100, 200, 300]
    assert all(math.isfinite(loss) and 0 <= acc <= 1 for _, loss, acc in seen)
    assert result.stop_reason == "cancelled"
    assert result.epochs_run == 300
    # weights() is each report's own copy: the network at that epoch, then still training
    assert all(t.shape == theta[0].shape for t in theta)
    assert not np.array_equal(theta[0], theta[1])
    np.testing.assert_array_equal(theta[-1], result.params["theta"])


def test_history_is_every_epoch_for_short_runs_and_thinned_for_long_ones():
    x, y = datasets.xor()
    short = fit(LAB, x, y, TrainingConfig(epochs=50))
    assert short.history["epoch"] == list(range(51))
    long = fit(LAB, x, y, TrainingConfig(epochs=5000, starts=1))
    assert len(long.history["epoch"]) <= MAX_ROWS + 1
    assert long.history["epoch"][0] == 0 and long.history["epoch"][-1] == 5000
    assert len(set(np.diff(long.history["epoch"]))) == 1


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_mini_batches_learn_too(batch_size):
    x, y = datasets.linear(40, seed=2)
    config = TrainingConfig(epochs=300, batch_size=batch_size, starts=1)
    result = fit(LAB, x, y, config)
    assert result.accuracy >= 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "identity"])
def test_every_optimizer_and_activation_learns_linear(optimizer, activation):
    x, y = datasets.linear(100, seed=4)
    lr = {"sgd": 1.0, "momentum": 0.3, "adam": 0.05}[optimizer]
    config = TrainingConfig(optimizer=optimizer, learning_rate=lr, epochs=1500)
    result = fit(Architecture(activation=activation), x, y, config)
    assert result.accuracy >= 0.95


def test_float32_training_predicts_like_float64():
    x, y = datasets.linear(200, seed=8)
    m64, _ = Model.train(LAB, x, y, TrainingConfig(epochs=800))
    m32, _ = Model.train(LAB, x, y, TrainingConfig(epochs=800, dtype="float32"))
    assert m32.params["theta"].dtype == np.float32
    grid = np.random.default_rng(0).uniform(0, 1, (2000, 2))
    assert np.mean(m32.predict(grid)[1] == m64.predict(grid)[1]) >= 0.99


def test_invalid_configurations_are_refused():
    x, y = datasets.xor()
    for bad in [dict(optimizer="rmsprop"), dict(loss="hinge"), dict(dtype="int8"),
                dict(epochs=0), dict(batch_size=0), dict(starts=0)]:
        with pytest.raises(ValueError):
            fit(LAB, x, y, TrainingConfig(**bad))
