"""fit_many: trials trained together end exactly as each does trained alone."""

import dataclasses

import numpy as np
import pytest

from service.nn import datasets
from service.nn.network import Architecture, init_params, join, spread, take
from service.nn.training import Diverged, TrainingConfig, fit, fit_many
from service.nn.watch import Curves

LAB = Architecture()


def _assert_same(together, alone):
    """The trial trained beside others ends as it does alone: weights to 1e-12, the rest equal."""
    assert (together.stop_reason, together.epochs_run) == (alone.stop_reason, alone.epochs_run)
    np.testing.assert_allclose(together.params["theta"], alone.params["theta"], rtol=0, atol=1e-12)
    assert together.history["epoch"] == alone.history["epoch"]
    np.testing.assert_allclose(together.history["loss"], alone.history["loss"], rtol=1e-12)
    assert together.best_epoch == alone.best_epoch


def test_the_issues_sweep_of_64_trials_on_xor_equals_each_trial_alone():
    x, y = datasets.xor()
    rates = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    configs = [TrainingConfig(epochs=2000, seed=seed, learning_rate=lr, starts=1)
               for seed in range(8) for lr in rates]
    together = fit_many(LAB, x, y, configs)
    for config, result in zip(configs, together, strict=True):
        _assert_same(result, fit(LAB, x, y, config))
    assert len({r.params["theta"].tobytes() for r in together}) == len(configs)  # 64 trials


@pytest.mark.parametrize("optimizer,lr", [("sgd", 2.0), ("momentum", 0.5), ("adam", 0.05)])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_trials_with_their_own_rates_seeds_decay_and_starts_end_as_alone(optimizer, lr,
                                                                         batch_size):
    x, y = datasets.linear(60, seed=5)
    base = TrainingConfig(epochs=400, optimizer=optimizer, batch_size=batch_size, starts=3,
                          probe_epochs=50, loss="mse")
    configs = [dataclasses.replace(base, learning_rate=lr * scale, seed=seed, l2=l2)
               for scale, seed, l2 in [(1.0, 0, 0.0), (0.5, 1, 1e-3), (2.0, 2, 0.0),
                                       (1.0, 3, 1e-2)]]
    together = fit_many(LAB, x, y, configs)
    for config, result in zip(configs, together, strict=True):
        _assert_same(result, fit(LAB, x, y, config))


def test_each_trial_stops_at_its_own_epoch_with_its_own_reason():
    x, y = datasets.xor()
    base = TrainingConfig(epochs=3000, starts=2, probe_epochs=100)
    configs = [dataclasses.replace(base, target_accuracy=1.0, seed=1),
               dataclasses.replace(base, tolerance=0.05, seed=2),
               dataclasses.replace(base, patience=30, learning_rate=0.0, seed=3),
               dataclasses.replace(base, seed=4)]
    together = fit_many(LAB, x, y, configs)
    reasons = [r.stop_reason for r in together]
    assert reasons == ["target_accuracy", "tolerance", "patience", "epochs"]
    assert len({r.epochs_run for r in together}) == 4
    for config, result in zip(configs, together, strict=True):
        _assert_same(result, fit(LAB, x, y, config))


def test_configs_of_other_shapes_train_in_their_own_pass_and_keep_their_order():
    x, y = datasets.xor()
    configs = [TrainingConfig(epochs=300, seed=0), TrainingConfig(epochs=200, seed=0),
               TrainingConfig(epochs=300, seed=1, optimizer="sgd", learning_rate=1.0)]
    assert len({c.shape() for c in configs}) == 3
    for config, result in zip(configs, fit_many(LAB, x, y, configs), strict=True):
        _assert_same(result, fit(LAB, x, y, config))


def test_a_trial_that_diverges_ends_alone_and_the_others_go_on():
    x, y = datasets.linear(50, seed=1)
    arch = Architecture(activation="identity", output_activation="identity")
    base = TrainingConfig(loss="mse", optimizer="sgd", epochs=300, starts=1)
    configs = [dataclasses.replace(base, learning_rate=1e6), dataclasses.replace(base,
                                                                                learning_rate=0.1)]
    wild, tame = fit_many(arch, x, y, configs)
    assert wild.stop_reason == "diverged" and wild.params is None
    with pytest.raises(Diverged):
        fit(arch, x, y, configs[0])
    _assert_same(tame, fit(arch, x, y, configs[1]))


def test_progress_reports_every_trial_still_training_and_cancel_stops_them_all():
    x, y = datasets.xor()
    configs = [TrainingConfig(epochs=1000, seed=s, target_accuracy=1.0 if s == 0 else None)
               for s in range(3)]
    seen = []

    def on_progress(epoch, rows):
        seen.append((epoch, sorted(rows)))
        return epoch >= 400

    results = fit_many(LAB, x, y, configs, on_progress=on_progress, report_every=100)
    assert seen[0] == (0, [0, 1, 2]) and seen[-1][0] == 400
    assert [r.stop_reason for r in results[1:]] == ["cancelled", "cancelled"]
    assert all(r.epochs_run == 400 for r in results[1:])


def test_take_join_and_spread_keep_each_networks_weights():
    params = [init_params(LAB, np.random.default_rng(s)) for s in range(3)]
    stack = join(LAB, [p["theta"] for p in params])
    for k, p in enumerate(params):
        np.testing.assert_array_equal(take(LAB, stack, [k]), p["theta"])
    np.testing.assert_array_equal(take(LAB, stack, [2, 0]), join(LAB, [params[2]["theta"],
                                                                     params[0]["theta"]]))
    rates = take(LAB, spread(LAB, np.array([0.1, 0.2, 0.3])), [1])
    assert set(rates.tolist()) == {0.2}
    decay = spread(LAB, np.array([0.5]), biases=False)
    one = init_params(LAB, np.random.default_rng(0))
    one["theta"][...] = decay
    assert all((W == 0.5).all() for W in one["W"]) and all((b == 0).all() for b in one["b"])


def test_curves_follow_each_network_across_stacks_and_gaps():
    curves = Curves(4, ("loss", "accuracy"))
    ids = np.arange(4)
    curves.record(0, ids, {"loss": np.array([0.4, 0.3, 0.2, 0.1]), "accuracy": np.full(4, 0.5)})
    curves.record(2, ids, {"loss": np.array([0.3, 0.2, 0.1, 0.0]), "accuracy": np.ones(4)})
    kept = ids[[3, 1]]  # a smaller stack, its networks in another order
    curves.record(4, kept, {"loss": np.array([0.05, 0.15]), "accuracy": None})
    assert curves.of(3) == {"epoch": [0, 2, 4], "loss": [0.1, 0.0, 0.05],
                            "accuracy": [0.5, 1.0, None]}
    assert curves.of(1, keys=["loss"]) == {"epoch": [0, 2, 4], "loss": [0.3, 0.2, 0.15]}
    assert curves.of(0) == {"epoch": [0, 2], "loss": [0.4, 0.3], "accuracy": [0.5, 1.0]}
    assert curves.of(3, max_rows=2)["epoch"] == [0, 4]
    assert curves.of(3, until=4)["epoch"] == [0, 2]
