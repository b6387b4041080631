"""The lab's data sets exactly, the guards on user data, and the model as a value."""

import threading

import numpy as np
import pytest

from service.nn import batches, datasets
from service.nn.model import SMALL_ROWS, Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig


def test_xor_is_the_labs_21_points():
    x, y = datasets.xor()
    assert x.shape == (21, 2)
    diagonal = x[y == 0]
    anti = x[y == 1]
    np.testing.assert_allclose(diagonal[:, 0], diagonal[:, 1])
    np.testing.assert_allclose(anti.sum(axis=1), 1.0)
    assert len(diagonal) == 11 and len(anti) == 10
    assert not np.any(np.all(np.isclose(anti, 0.5), axis=1))  # (0.5, 0.5) keeps label 0


def test_linear_is_uniform_in_the_unit_square_and_labelled_by_the_diagonal():
    x, y = datasets.linear(500, seed=1)
    assert x.shape == (500, 2) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(y, (x[:, 0] <= x[:, 1]).astype(float))
    np.testing.assert_array_equal(datasets.linear(500, seed=1)[0], x)
    assert not np.array_equal(datasets.linear(500, seed=2)[0], x)


@pytest.mark.parametrize("make", [datasets.circle, datasets.spiral])
def test_harder_sets_are_seeded_and_balanced(make):
    x, y = make(n=300, noise=0.02, seed=4)
    assert x.shape == (300, 2) and set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - 0.5) < 0.01
    np.testing.assert_array_equal(make(n=300, noise=0.02, seed=4)[0], x)


def test_circle_puts_the_disc_inside_the_ring():
    x, y = datasets.circle(n=400, noise=0.0, seed=0)
    r = np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5)
    assert r[y == 1].max() < r[y == 0].min()


@pytest.mark.parametrize(
    "x,y,message",
    [
        ([[0, 0], [1, np.nan]], [0, 1], "finite"),
        ([[0, 0], [1, np.inf]], [0, 1], "finite"),
        ([[0, 0, 0], [1, 1, 1]], [0, 1], "shape"),
        ([0, 1], [0, 1], "shape"),
        ([[0, 0], [1, 1]], [0, 1, 1], "labels must have shape"),
        ([[0, 0], [1, 1]], [0, 2], "0 or 1"),
        ([[0, 0], [1, 1]], [-1, 1], "0 or 1"),
        ([[0, 0], [1, 1]], [1, 1], "single class"),
    ],
)
def test_bad_user_data_is_refused_with_a_reason(x, y, message):
    with pytest.raises(ValueError, match=message):
        datasets.check_dataset(x, y)


def test_model_round_trips_through_arrays():
    model, _ = Model.train(Architecture(bias=False), *datasets.xor(), TrainingConfig(epochs=30))
    arrays, meta = model.to_arrays()
    assert sorted(arrays) == ["W0", "W1", "W2"]
    again = Model.from_arrays(arrays, meta)
    np.testing.assert_array_equal(again.params["theta"], model.params["theta"])
    assert again.arch == model.arch and again.config == model.config


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a, m: a.pop("b1"), "do not match"),
        (lambda a, m: a.update(W0=np.zeros((3, 4))), "shape"),
        (lambda a, m: a.update(W0=np.zeros((2, 4), dtype=np.int64)), "dtype"),
        (lambda a, m: a.update(W1=np.full((4, 4), np.nan)), "non-finite"),
        (lambda a, m: m["architecture"].update(activation="swish"), "unknown activation"),
        (lambda a, m: m.pop("training"), "incomplete"),
    ],
)
def test_inconsistent_arrays_are_refused(change, message):
    model, _ = Model.train(Architecture(), *datasets.xor(), TrainingConfig(epochs=5))
    arrays, meta = model.to_arrays()
    arrays = dict(arrays)
    change(arrays, meta)
    with pytest.raises(ValueError, match=message):
        Model.from_arrays(arrays, meta)


def test_predict_returns_scores_and_thresholded_labels():
    model, _ = Model.train(Architecture(), *datasets.xor(), TrainingConfig())
    scores, labels = model.predict([[0.1, 0.9], [0.5, 0.5]])
    assert labels.tolist() == [1, 0]
    assert 0 <= scores.min() and scores.max() <= 1
    _, strict = model.predict([[0.1, 0.9]], threshold=1.0)
    assert strict.tolist() == [0]
    with pytest.raises(ValueError, match="finite"):
        model.predict([[np.nan, 0.0]])


def _batch_path(model, x):
    """Return the scores of x as a batch of any size computes them (no reused workspace)."""
    x = np.asarray(x, dtype=np.float64)
    return batches.predict(model.params, batches.Batches(model.arch, x, None))[:, 0]


def test_small_predictions_reuse_a_workspace_and_match_the_batch_path():
    model, _ = Model.train(Architecture((2, 5, 3, 1), "tanh"), *datasets.xor(),
                           TrainingConfig(epochs=50))
    x = np.random.default_rng(0).uniform(0, 1, size=(SMALL_ROWS + 3, 2))
    earlier = []
    for n in [1, 1, 2, SMALL_ROWS, 1, SMALL_ROWS + 1, SMALL_ROWS + 3, 3]:  # sizes change
        scores = model.predict_proba(x[:n])
        np.testing.assert_array_equal(scores, _batch_path(model, x[:n]))
        earlier.append((scores, scores.copy()))
    for scores, copy in earlier:  # a later call never writes into an earlier answer
        np.testing.assert_array_equal(scores, copy)


def test_threads_predicting_at_once_each_get_their_own_answer():
    model, _ = Model.train(Architecture(), *datasets.xor(), TrainingConfig(epochs=50))
    x = np.random.default_rng(1).uniform(0, 1, size=(8, 2))
    expected = [_batch_path(model, x[i : i + 1])[0] for i in range(len(x))]
    wrong = []

    def ask(i):
        for _ in range(300):
            if model.predict_proba(x[i : i + 1])[0] != expected[i]:
                wrong.append(i)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(x))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
