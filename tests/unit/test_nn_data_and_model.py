"""The lab's data sets exactly, the guards on user data, and the model as a value."""

import re

import numpy as np
import pytest

from service.nn import datasets
from service.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from service.nn.model import FLOAT_WORK, SMALL_ROWS, Model
from service.nn.network import Architecture, count_params, forward_floats, params_from_theta
from service.nn.passes import Workspace, forward
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


def _random_model(arch, dtype=np.float64, scale=2.0, seed=0):
    """Return a model of arch with random weights (no training: every unit matters)."""
    theta = np.random.default_rng(seed).normal(0.0, scale, count_params(arch)).astype(dtype)
    return Model(arch, params_from_theta(arch, theta), TrainingConfig(dtype=np.dtype(dtype).name))


SHAPES = [Architecture((2, 4, 4, 1), h, o, bias) for h in ACTIVATIONS
          for o in OUTPUT_ACTIVATIONS for bias in (True, False)]


@pytest.mark.parametrize("arch", SHAPES, ids=str)
def test_forward_on_floats_is_forward(arch):
    model = _random_model(arch)
    x = np.random.default_rng(1).uniform(-3, 3, size=(SMALL_ROWS, 2))
    expected = forward(model.params, Workspace(arch, 1, len(x)).load(x))[0, 0]
    got = forward_floats(model.floats, x.tolist())
    assert all(type(v) is float for v in got)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("arch", SHAPES[::3], ids=str)
def test_classify_answers_as_predict_does_at_every_size(arch):
    model = _random_model(arch, seed=2)
    x = np.random.default_rng(3).uniform(-3, 3, size=(SMALL_ROWS + 3, 2))
    for n in [1, 2, SMALL_ROWS, SMALL_ROWS + 1, SMALL_ROWS + 3]:
        scores, labels = model.classify(x[:n].tolist(), threshold=0.3)
        expected, expected_labels = model.predict(x[:n], threshold=0.3)
        np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-15)
        assert labels == expected_labels.tolist()
        assert all(type(v) is float for v in scores) and all(type(v) is int for v in labels)


def test_a_float32_model_classifies_in_float32():
    arch = Architecture()
    m32 = _random_model(arch, np.float32)
    assert m32.floats is None  # Python floats would not repeat its float32 arithmetic
    x = np.random.default_rng(4).uniform(0, 1, size=(3, 2))
    scores, labels = m32.classify(x.tolist())
    assert scores == m32.predict_proba(x).tolist()


@pytest.mark.parametrize("points", [
    [[0.1, 0.9]], [(1, -2), [3.5, 1e6]], np.array([[0.1, 0.2]]), [[np.float64(0.3), 0.4]],
    [[True, 0.0]], [np.array([0.5, 0.5])],
])
def test_check_rows_accepts_what_check_points_accepts(points):
    rows = datasets.check_rows(points)
    assert rows == [tuple(p) for p in datasets.check_points(points).tolist()]
    assert all(type(v) is float for row in rows for v in row)


@pytest.mark.parametrize("points", [
    [], [[0.1]], [[0.1, 0.2, 0.3]], [[np.nan, 0.0]], [[0.0, np.inf]], [[1e6 + 1, 0.0]],
    [[0.0, -1e7]], [["0.5x", 0.1]], [[0.1, 0.2], [0.3]], "12",
])
def test_check_rows_refuses_what_check_points_refuses(points):
    with pytest.raises(ValueError) as refused:
        datasets.check_points(points)
    with pytest.raises(ValueError, match=re.escape(str(refused.value))):
        datasets.check_rows(points)


def test_a_bigger_model_classifies_through_numpy():
    big = _random_model(Architecture((2, 16, 16, 1)))  # 337 weights: floats would cost more
    assert big.floats is None
    x = np.random.default_rng(5).uniform(0, 1, size=(2, 2))
    assert big.classify(x.tolist())[0] == big.predict_proba(x).tolist()
    small = _random_model(Architecture())  # 37 weights: floats up to FLOAT_WORK // 37 rows
    assert small.floats is not None and SMALL_ROWS * 37 <= FLOAT_WORK


@pytest.mark.parametrize("output", OUTPUT_ACTIVATIONS)
def test_an_overflow_is_answered_as_numpy_answers_it(output):
    # Products of +-1e305 weights overflow to +-inf; on floats inf - inf is NaN, where
    # BLAS may keep an infinity or give NaN too (it depends on its kernel, so on the batch
    # size and the NumPy build): such points take NumPy's way, answered as NumPy answers.
    arch = Architecture((2, 1), output_activation=output, bias=False)
    theta = np.array([1e305, -1e305])
    model = Model(arch, params_from_theta(arch, theta), TrainingConfig())
    point = [[1e4, 1e4]]
    assert np.isnan(forward_floats(model.floats, point)[0])
    scores, labels = model.classify(point)
    expected, expected_labels = model.predict(np.array(point))
    np.testing.assert_array_equal(scores, expected)
    assert labels == expected_labels.tolist()
