"""POST /v1/models/{name}/predict and /v1/models/{name}/versions/{v}/predict."""

import numpy as np
import orjson
import pytest

from service import create_app
from service.nn.datasets import xor
from service.schemas import PredictResponse, bulk
from service.settings import Settings

from .helpers import FAST, assert_problem, train

X, Y = xor()
LABELS = Y.astype(int).tolist()
PAIRS = X.tolist()
OBJECTS = [{"x1": x1, "x2": x2} for x1, x2 in PAIRS]
PATHS = ["/v1/models/xor-demo/predict", "/v1/models/xor-demo/versions/1/predict"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A client whose store holds the lab's XOR model 'xor-demo' v1, shared by read-only tests."""
    app = create_app(Settings(store_dir=tmp_path_factory.mktemp("predict") / "store"))
    client = app.test_client()
    job = train(client, "xor-demo")
    assert job.status == "succeeded", job.error
    yield client
    app.extensions["nnserve"].stop()


def _predict(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 200, r.json
    assert r.mimetype == "application/json"
    return PredictResponse.model_validate(r.json)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("points", [PAIRS, OBJECTS], ids=["pairs", "objects"])
def test_all_21_xor_points_are_classified_right(trained, path, points):
    answer = _predict(trained, path, {"points": points})

    assert (answer.model, answer.version) == ("xor-demo", 1)
    assert [p.label for p in answer.predictions] == LABELS
    for p in answer.predictions:
        assert 0.0 <= p.probability <= 1.0
        assert p.label == int(p.probability >= 0.5)


@pytest.mark.parametrize("path", PATHS)
def test_a_single_point_object_gets_one_prediction(trained, path):
    for (x1, x2), label in zip(PAIRS, LABELS, strict=True):
        answer = _predict(trained, path, {"x1": x1, "x2": x2})

        assert answer.version == 1
        assert [p.label for p in answer.predictions] == [label]


def test_the_three_forms_give_the_same_answer(trained):
    path = PATHS[0]
    by_pairs = _predict(trained, path, {"points": PAIRS}).predictions
    by_objects = _predict(trained, path, {"points": OBJECTS}).predictions
    one_by_one = [_predict(trained, path, point).predictions[0] for point in OBJECTS]

    assert by_pairs == by_objects
    # One point is computed on Python floats, 21 through NumPy: the same arithmetic, whose
    # last bits may differ (NumPy's tanh is its own), never a label.
    assert [p.label for p in one_by_one] == [p.label for p in by_pairs]
    assert [p.probability for p in one_by_one] == pytest.approx(
        [p.probability for p in by_pairs], rel=1e-12, abs=1e-15)


def test_order_is_preserved(trained):
    forward = _predict(trained, PATHS[0], {"points": PAIRS}).predictions
    backward = _predict(trained, PATHS[0], {"points": PAIRS[::-1]}).predictions

    assert [p.label for p in backward] == [p.label for p in forward[::-1]] == LABELS[::-1]
    # BLAS's gemv of the output layer rounds a point's sum by where it falls in its vector
    # chunks: a point's probability may move in its last bits with its place in the request.
    assert [p.probability for p in backward] == pytest.approx(
        [p.probability for p in forward[::-1]], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("threshold", [0.0, 0.001, 0.999, 1.5])
def test_threshold_moves_labels_but_not_probabilities(trained, threshold):
    plain = _predict(trained, PATHS[0], {"points": PAIRS}).predictions
    moved = _predict(trained, PATHS[0], {"points": PAIRS, "threshold": threshold}).predictions

    assert [p.probability for p in moved] == [p.probability for p in plain]
    assert [p.label for p in moved] == [int(p.probability >= threshold) for p in plain]


def test_threshold_works_with_the_single_point_form(trained):
    answer = _predict(trained, PATHS[0], {"x1": 0.0, "x2": 0.0, "threshold": 0.0})

    assert [p.label for p in answer.predictions] == [1]


def test_a_pinned_older_version_answers_with_that_version(client, xor_model):
    newer = train(client, "xor-demo", {"kind": "linear", "n": 40}, training=FAST)
    assert newer.result.version == 2

    latest = _predict(client, PATHS[0], {"points": PAIRS})
    pinned = _predict(client, PATHS[1], {"points": PAIRS})

    assert latest.version == 2
    assert pinned.version == 1
    assert [p.label for p in pinned.predictions] == LABELS
    assert latest.predictions != pinned.predictions


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/v1/models/nope/predict", "model 'nope' not found"),
        ("/v1/models/nope/versions/1/predict", "model 'nope' version 1 not found"),
        ("/v1/models/xor-demo/versions/9/predict", "model 'xor-demo' version 9 not found"),
    ],
)
def test_unknown_model_or_version_is_404(trained, path, detail):
    problem = assert_problem(trained.post(path, json={"x1": 0, "x2": 0}), 404, "Model Not Found")

    assert problem.detail == detail


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"points": []}, ["points"]),
        ({}, ["points"]),
        ({"points": [[0.1, 0.2, 0.3]]}, ["points", 0]),
        ({"points": [[0.1]]}, ["points", 0, 1]),
        ({"points": [["a", 0.1]]}, ["points", 0, 0]),
        ({"points": [[0.1, None]]}, ["points", 0, 1]),
        ({"points": [{"x1": 0.1}]}, ["points"]),
        ({"points": [{"x1": 0.1, "x2": 0.2, "x3": 0.3}]}, ["points"]),
        ({"points": "0.1,0.2"}, ["points"]),
        ({"points": [[0.1, 0.2]], "threshold": "high"}, ["threshold"]),
        ({"x1": 0.1}, ["points"]),  # as {"points": [{"x1": 0.1}]}, not a null x2
        ({"x1": 0.1, "x2": 0.2, "points": [[0.1, 0.2]]}, ["x1"]),
        ([[0.1, 0.2]], []),
    ],
)
def test_a_malformed_predict_body_is_422_naming_the_field(trained, body, loc):
    r = trained.post(PATHS[0], json=body)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == loc


# Bodies from service.schemas.bulk.BULK_BYTES on are read straight into an array; they must
# answer exactly as the general path does, refusals included.
MANY = np.random.default_rng(3).uniform(-2, 2, (2_000, 2)).tolist()


def test_a_large_body_answers_byte_for_byte_as_the_general_path(trained):
    pairs = trained.post(PATHS[0], data=orjson.dumps({"points": MANY}),
                         content_type="application/json")
    objects = trained.post(PATHS[0], json={"points": [{"x1": a, "x2": b} for a, b in MANY]})
    small = [trained.post(PATHS[0], json={"points": MANY[i:i + 100]}) for i in range(0, 2000, 100)]

    assert len(pairs.get_data()) > bulk.BULK_BYTES
    assert pairs.status_code == objects.status_code == 200
    assert pairs.get_data() == objects.get_data()
    assert pairs.json["predictions"] == [p for r in small for p in r.json["predictions"]]


@pytest.mark.parametrize("point, loc", [
    ([0.1, 2e6], ["points", 1234, 1]),
    ([0.1, "0.2"], ["points", 1234, 1]),  # a number in a string: JSON's types, not lax ones
    ([True, 0.2], ["points", 1234, 0]),
    ([0.1], ["points", 1234, 1]),
    ([0.1, 0.2, 0.3], ["points", 1234]),
    ([0.1, None], ["points", 1234, 1]),
])
def test_a_large_body_with_one_bad_point_is_refused_naming_it(trained, point, loc):
    points = MANY[:1234] + [point] + MANY[1235:]
    r = trained.post(PATHS[0], json={"points": points})
    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == loc


@pytest.mark.parametrize("number", [b"-9223372036854775809", b"1" + b"0" * 30])
def test_a_large_body_with_an_integer_past_64_bits_is_422_naming_it(trained, number):
    raw = orjson.dumps({"points": MANY[:1234] + [[0.5, 0.5]] + MANY[1235:]})
    raw = raw.replace(b"[0.5,0.5]", b"[" + number + b",0.5]")
    r = trained.post(PATHS[0], data=raw, content_type="application/json")
    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["points", 1234, 0]


def test_a_large_malformed_body_is_400(trained):
    raw = orjson.dumps({"points": MANY}).replace(b"],[", b"] [", 1)
    r = trained.post(PATHS[0], data=raw, content_type="application/json")
    assert_problem(r, 400, "Bad Request", "malformed JSON")
