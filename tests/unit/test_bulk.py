"""The /v1 bulk path (service/schemas/bulk.py): a large predict body read straight into an
array must mean exactly what PredictRequest makes of it, or be left to PredictRequest."""

import json
import random

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from service import jsoncodec
from service.errors import LimitExceeded
from service.schemas import PredictRequest, bulk

LIMITS = {"max_predict_points": 100_000}
RNG = np.random.default_rng(7)
X = RNG.uniform(-3, 3, (1500, 2))  # 19-60 KB of JSON, over BULK_BYTES in each form


def _general(raw):
    """Return (x, threshold) as the general path reads raw, or None where it refuses it."""
    try:
        req = PredictRequest.model_validate(jsoncodec.loads(raw), context=LIMITS)
    except (ValueError, ValidationError, LimitExceeded):
        return None
    return np.array(req.points, dtype=np.float64), req.threshold


def _same_as_general(raw):
    """Assert bulk.read(raw) is None or what the general path reads; return the read."""
    got = bulk.read(raw, LIMITS)
    if got is not None:
        expected = _general(raw)
        assert expected is not None, raw[:200]
        assert np.array_equal(got[0], expected[0]) and got[1] == expected[1]
    return got


@pytest.mark.parametrize("raw", [
    orjson.dumps({"points": X.tolist()}),
    json.dumps({"points": X.tolist()}).encode(),  # ", " and ": "
    json.dumps({"threshold": 0.25, "points": X.tolist()}, indent=2).encode(),
    json.dumps({"points": X.round(2).tolist(), "threshold": 1}).encode(),
    json.dumps({"points": (X * 1e3).astype(int).tolist()}).encode(),  # integers
    orjson.dumps({"points": X.tolist()}).replace(b"e-0", b"E-0") + b"\r\n",
    b'\t{ "points" :\n' + orjson.dumps(X.tolist()).replace(b",", b" ,\t") + b" }",
], ids=["compact", "spaced", "indented", "threshold-after", "integers", "exponents", "tabs"])
def test_a_valid_large_body_is_read_as_the_general_path_reads_it(raw):
    got = _same_as_general(raw)
    assert got is not None
    assert got[0].shape == (len(X), 2) and got[0].dtype == np.float64


def test_a_small_body_is_left_to_the_general_path():
    raw = orjson.dumps({"points": X[:10].tolist()})
    assert _general(raw) is not None
    assert bulk.read(raw, LIMITS) is None


def test_a_few_points_padded_past_the_size_are_left_to_the_general_path():
    """Model.classify computes up to SMALL_ROWS points on floats (the last bits may differ
    from NumPy's): the same points must not be answered otherwise for a longer body."""
    raw = orjson.dumps({"points": X[:8].tolist()}) + b" " * bulk.BULK_BYTES
    assert _general(raw) is not None
    assert bulk.read(raw, LIMITS) is None
    assert bulk.read(orjson.dumps({"points": X[:9].tolist()}) + b" " * bulk.BULK_BYTES,
                     LIMITS) is not None


A, B = (orjson.dumps(v) for v in X[300].tolist())


@pytest.mark.parametrize("moved", [
    A + b"[," + B + b"],[",  # the first number before its bracket: still two numbers
    b"[" + A + b",]" + B + b",[",  # the second after it
    A + b" [ ," + B + b"],[",
    b"[" + A + b", ] " + B + b",[",
], ids=["first-before", "second-after", "spaced-before", "spaced-after"])
def test_a_number_moved_across_its_bracket_is_left_to_the_general_path(moved):
    at = BODY.index(ONE)
    raw = BODY[:at] + moved + BODY[at + len(ONE):]
    assert _general(raw) is None  # malformed JSON
    assert _same_as_general(raw) is None


BODY = orjson.dumps({"points": X.tolist(), "threshold": 0.5})
ONE = orjson.dumps(X[300].tolist()) + b",["  # a point's text and the next one's start


@pytest.mark.parametrize("old, new", [
    (b"]", b",1]"),  # three numbers
    (b",", b"]"),  # one number
    (b",", b",,"),
    (b"[", b"[,"),
    (b"]", b",]"),
    (b",", b" "),  # "1 2": two numbers where one belongs
    (b"],[", b"]3,["),  # a number between points
    (b"],[", b",["),
    (b"],[", b"],[["),
    (b",", b',"1",'),
    (b",", b",true,"),
    (b",", b",null,"),
    (b",", b",NaN,"),
    (b",", b",1e400,"),
    (b",", b",2000000,"),  # out of range: the general path names it
    (b",", b",+1,"),
    (b",", b",01,"),
    (b",", b",1.,"),
    (b",", b",.5,"),
    (b",", b",1e,"),
    (b",", b",-,"),
    (b",", b",\x0b1,"),  # not JSON whitespace
    (b",", b",\xc3\xa91,"),
    (b"[", b'{"x1":1,"x2":2},['),  # an object point: valid, for the general path
    (ONE, b"[-9223372036854775809,1],["),  # past 64 bits: simdjson's own error class
    (ONE, b"[1" + b"0" * 30 + b",1],["),
    (ONE, b"[18446744073709551617,1],["),
])
def test_a_changed_point_is_left_to_the_general_path(old, new):
    at = BODY.index(ONE)
    raw = BODY[:at] + ONE.replace(old, new, 1) + BODY[at + len(ONE):]
    assert _same_as_general(raw) is None


@pytest.mark.parametrize("raw", [
    BODY + b"x",
    BODY[:-1],
    BODY.replace(b'"threshold":0.5', b'"threshold":"0.5"'),
    BODY.replace(b'"threshold":0.5', b'"threshold":true'),
    BODY.replace(b'"threshold":0.5', b'"threshold":null'),
    BODY.replace(b'"threshold":0.5', b'"extra":1'),
    BODY.replace(b'"threshold":0.5', b'"points":[[1,2]]'),  # a duplicate key
    BODY.replace(b'"threshold":0.5', b'"threshold":[[1,2]]'),
    b'{"points":null,"threshold":0.5,"x":' + BODY[10:-17] + b"}",
    b'{"threshold":0.5,"points":"' + BODY[10:-17] + b'"}',
    b'{"points":[' + BODY[10:-17] + b"]}",  # a list of lists of points
    b"[" + BODY + b"]",
    BODY.replace(b'"points"', b'"Points"'),
    orjson.dumps({"points": RNG.uniform(-1, 1, (LIMITS["max_predict_points"] + 1, 2)).tolist()}),
], ids=lambda raw: repr(raw[:12] + b"..." + raw[-20:]))
def test_a_changed_body_is_left_to_the_general_path(raw):
    assert _same_as_general(raw) is None


def test_random_edits_never_make_it_read_what_the_general_path_would_not():
    """Random insertions, deletions and replacements of JSON's own bytes, 4,000 of them: each
    result is refused by both, read by both the same, or left to the general path."""
    alphabet = b'[]{},:" 0123456789.eE+-\nntruefalsenull'
    rng, read = random.Random(16), 0
    for _ in range(4000):
        raw = bytearray(BODY)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw))
            edit = rng.choice(("insert", "delete", "replace"))
            if edit == "insert":
                raw.insert(at, rng.choice(alphabet))
            elif edit == "delete":
                del raw[at]
            else:
                raw[at] = rng.choice(alphabet)
        read += _same_as_general(bytes(raw)) is not None
    assert 0 < read < 4000  # some edits leave a valid body (a digit for a digit), most do not


@pytest.mark.parametrize("n", [1, 2, 999, 20_000])
@pytest.mark.parametrize("kind", ["list", "array"])
def test_write_is_the_json_of_the_predictions(n, kind):
    scores = RNG.uniform(0, 1, n) ** RNG.uniform(1, 80, n)  # down to 1e-80: exponents
    scores[: n // 3] = np.round(scores[: n // 3], 2)
    labels = (scores >= 0.5).astype(np.int64)
    if kind == "list":
        scores, labels = scores.tolist(), labels.tolist()
    raw = bulk.write("xor-v2.1", 12, scores, labels)
    predictions = [{"label": int(label), "probability": float(p)}
                   for label, p in zip(labels, scores, strict=True)]
    expected = {"model": "xor-v2.1", "version": 12, "predictions": predictions}
    assert raw == jsoncodec.dumps(expected)
    assert json.loads(raw) == expected


def test_write_escapes_the_model_name():
    raw = bulk.write('a"{b', 1, [0.25], [1])
    assert json.loads(raw)["model"] == 'a"{b'
    assert json.loads(raw)["predictions"] == [{"label": 1, "probability": 0.25}]
