"""The held-out validation split, early stopping on its loss, weight decay, each probe's curve."""

import dataclasses
import math

import numpy as np
import pytest

from service.nn import datasets
from service.nn.config import MAX_VALIDATION_SPLIT
from service.nn.network import Architecture
from service.nn.training import TrainingConfig, fit
from service.nn.trials import MAX_PROBE_HISTORY

LAB = Architecture()


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("seed", [0, 7])
def test_hold_out_is_stratified_seeded_and_keeps_each_class_on_each_side(fraction, seed):
    _, y = datasets.linear(100, seed)
    train, held = datasets.hold_out(y, fraction, seed)
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(100))
    for label in (0, 1):
        n = int(np.count_nonzero(y == label))
        got = int(np.count_nonzero(y[held] == label))
        assert got == min(max(1, math.floor(fraction * n + 0.5)), n - 1)  # half up
        assert np.count_nonzero(y[train] == label) >= 1
    again_train, again_held = datasets.hold_out(y, fraction, seed)
    assert np.array_equal(again_held, held) and np.array_equal(again_train, train)
    assert not np.array_equal(datasets.hold_out(y, fraction, seed + 1)[1], held)


def test_hold_out_of_xor_and_of_a_tiny_set():
    _, y = datasets.xor()  # 11 zeros, 10 ones
    _, held = datasets.hold_out(y, 0.2, 0)
    assert sorted(y[held].tolist()) == [0.0, 0.0, 1.0, 1.0]
    _, held = datasets.hold_out(np.array([0.0, 1.0, 0.0, 1.0]), 0.01, 0)  # rounds to 0: 1 each
    assert len(held) == 2
    with pytest.raises(ValueError, match="at least 2 points of each class; class 1 has 1"):
        datasets.hold_out(np.array([0.0, 0.0, 0.0, 1.0]), 0.2, 0)
    train, held = datasets.hold_out(np.array([0.0, 1.0]), 0.0, 0)
    assert train.tolist() == [0, 1] and held.size == 0


def test_a_fit_with_a_validation_split_measures_the_points_it_did_not_train_on():
    x, y = datasets.linear(100, 3)
    config = TrainingConfig(epochs=300, validation_split=0.2, seed=3)
    result = fit(LAB, x, y, config, split_seed=3)
    train, held = datasets.hold_out(y, 0.2, 3)
    alone = fit(LAB, x[train], y[train], dataclasses.replace(config, validation_split=0.0))
    np.testing.assert_array_equal(result.params["theta"], alone.params["theta"])
    assert result.loss == pytest.approx(alone.loss, rel=1e-12)
    assert 0.8 <= result.validation_accuracy <= 1.0 and result.validation_loss > 0
    history = result.history
    assert len(history["validation_loss"]) == len(history["epoch"])
    assert history["validation_loss"][-1] == result.validation_loss
    assert all(v is not None for v in history["validation_accuracy"])
    plain = fit(LAB, x, y, dataclasses.replace(config, validation_split=0.0))
    assert plain.validation_loss is None and "validation_loss" not in plain.history


def test_early_stopping_on_the_validation_loss_returns_the_weights_of_its_best_epoch():
    x, y = datasets.circle(80, noise=0.1, seed=5)  # noisy enough to overfit
    arch = Architecture((2, 8, 8, 1))
    config = TrainingConfig(epochs=1000, validation_split=0.3, starts=1,
                            monitor="validation_loss", patience=50, seed=2)
    result = fit(arch, x, y, config, split_seed=5)
    assert result.stop_reason == "patience"
    best, curve = result.best_epoch, result.history
    assert result.epochs_run == best + 50
    # The best epoch's weights: the same training stopped there, with nothing watching.
    until_best = dataclasses.replace(config, epochs=best, monitor="loss", patience=None)
    np.testing.assert_array_equal(result.params["theta"],
                                  fit(arch, x, y, until_best, split_seed=5).params["theta"])
    measured = curve["validation_loss"]  # every epoch recorded, to the one that stopped
    assert curve["epoch"] == list(range(result.epochs_run + 1))
    assert measured[best] == min(measured)
    assert result.validation_loss == pytest.approx(min(measured), rel=1e-12)
    last = fit(arch, x, y, dataclasses.replace(config, restore_best_weights=False), split_seed=5)
    assert last.best_epoch is None and last.validation_loss > result.validation_loss


def test_monitoring_the_validation_loss_needs_a_split_and_choices_are_checked():
    for bad, message in [(dict(monitor="validation_loss"), "needs a validation_split"),
                         (dict(monitor="accuracy"), "unknown monitor"),
                         (dict(validation_split=MAX_VALIDATION_SPLIT + 0.01), "validation_split"),
                         (dict(l2=-1e-3), "l2"), (dict(l2=float("nan")), "l2")]:
        with pytest.raises(ValueError, match=message):
            TrainingConfig(**bad).check(LAB)


def test_weight_decay_shrinks_the_weights_not_the_biases():
    x, y = datasets.linear(100, 1)
    norms, biases = [], []
    for l2 in (0.0, 1e-3, 1e-2):
        params = fit(LAB, x, y, TrainingConfig(epochs=1500, l2=l2, seed=1)).params
        norms.append(sum(float(np.sum(W * W)) for W in params["W"]))
        biases.append(sum(float(np.sum(b * b)) for b in params["b"]))
    assert norms[0] > norms[1] > norms[2]
    assert biases[2] > 0.01 * biases[0]  # decay pulls the weights in, the biases stay free


def test_each_start_keeps_its_own_curve_and_the_one_that_continued_is_marked():
    x, y = datasets.xor()
    result = fit(LAB, x, y, TrainingConfig(epochs=2000, starts=4, probe_epochs=300, seed=5))
    probes, curve = result.history["probes"], result.history
    assert [p["start"] for p in probes] == [0, 1, 2, 3]
    assert sum(p["continued"] for p in probes) == 1
    for p in probes:
        assert p["epoch"][0] == 0 and p["epoch"][-1] < 300 and len(p["epoch"]) <= MAX_PROBE_HISTORY
        assert sorted(p) == ["continued", "epoch", "loss", "start"]
        assert len(p["loss"]) == len(p["epoch"])
    chosen = next(p for p in probes if p["continued"])
    at = {e: v for e, v in zip(curve["epoch"], curve["loss"], strict=True)}
    assert all(at[e] == v for e, v in zip(chosen["epoch"], chosen["loss"], strict=True))
    assert np.all(np.diff(curve["epoch"]) > 0)  # one curve, epoch 0 to the end, no jump back
    ends = [p["loss"][-1] for p in probes]
    assert chosen["loss"][-1] == min(ends)
    assert fit(LAB, x, y, TrainingConfig(epochs=50, starts=1)).history["probes"] == []
