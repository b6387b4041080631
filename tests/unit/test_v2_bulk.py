"""The /v2 bulk path (tensors._bulk): a large JSON inference request whose data is read
straight into doubles must decode exactly as the general path decodes it, or raise the
very error the general path raises."""

import json
import random

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from service.errors import ServiceError
from service.inference import tensors

MAX_POINTS = 100_000
RNG = np.random.default_rng(11)
X = RNG.uniform(-3, 3, (800, 2))  # 29-33 KB of JSON, over BULK_BYTES in each form


def _doc(data, **changes):
    tensor = {"name": "points", "shape": [len(X), 2], "datatype": "FP64", "data": data}
    return {"id": "r1", "inputs": [{**tensor, **changes}],
            "outputs": [{"name": "label"}, {"name": "probability"}]}


def _decoded(raw, fast):
    """Return ("ok", inference fields) or ("error", type, status, message) of raw."""
    try:
        got = tensors.decode(raw, None, MAX_POINTS, fast=fast)
    except ServiceError as exc:
        return ("error", type(exc).__name__, exc.status, str(exc))
    except ValidationError as exc:  # what the answer shows of it (http/problems.py)
        return ("error", [(e["loc"], e["msg"], e["type"]) for e in exc.errors()])
    return ("ok", got.id, got.x.tobytes(), got.x.shape, got.datatype, got.outputs)


def _same_as_general(raw):
    """Assert the bulk path decodes raw as the general path does; return whether it took
    raw (rather than leaving it to the general path)."""
    assert _decoded(raw, fast=True) == _decoded(raw, fast=False), raw[:200]
    return tensors._bulk(raw) is not None


FLAT, NESTED = X.ravel().tolist(), X.tolist()


@pytest.mark.parametrize("raw", [
    orjson.dumps(_doc(FLAT)),
    orjson.dumps(_doc(NESTED)),
    json.dumps(_doc(FLAT)).encode(),  # ", " and ": "
    json.dumps(_doc(NESTED)).encode(),
    orjson.dumps(_doc(FLAT, datatype="FP32")),
    orjson.dumps(_doc((X * 1e3).astype(int).ravel().tolist())),  # integers
    orjson.dumps(_doc(FLAT)).replace(b"e-0", b"E-0") + b"\r\n",
    orjson.dumps({"inputs": [{"data": FLAT, "datatype": "FP64", "name": "points",
                              "shape": [len(X), 2], "parameters": {"x": [1, 2]}}],
                  "parameters": {"binary_data_output": True}, "model_name": "m"}),
    b'\t{ "inputs" : [ {"name": "points", "shape": [800, 2], "datatype": "FP64", "data" :\n'
    + orjson.dumps(FLAT).replace(b",", b" ,\t") + b" } ] }",
    orjson.dumps(_doc(FLAT)).replace(b'"id":"r1"', b'"id":"\\"data\\":[1,2]"'),
], ids=["flat", "nested", "flat-spaced", "nested-spaced", "fp32", "integers", "exponents",
        "data-first", "tabs", "data-in-a-string"])
def test_a_valid_large_request_is_decoded_as_the_general_path_decodes_it(raw):
    assert _same_as_general(raw)
    x = tensors.decode(raw, None, MAX_POINTS).x
    assert x.shape == X.shape and x.dtype == np.float64


def test_a_small_request_is_left_to_the_general_path():
    raw = orjson.dumps({"inputs": [{"name": "points", "shape": [10, 2], "datatype": "FP64",
                                    "data": X[:10].ravel().tolist()}]})
    assert len(raw) < tensors.bulk.BULK_BYTES
    assert tensors.decode(raw, None, MAX_POINTS).x.shape == (10, 2)


BODY = orjson.dumps(_doc(FLAT))
AT = BODY.index(b'"data":[') + 8  # the first number


@pytest.mark.parametrize("raw", [
    BODY.replace(b'"datatype":"FP64"', b'"datatype":"INT64"'),
    BODY.replace(b'"shape":[800,2]', b'"shape":[799,2]'),  # a count that does not add up
    BODY.replace(b'"shape":[800,2]', b'"shape":[400,4]'),
    BODY.replace(b'"shape":[800,2]', b'"shape":[200000,2]'),  # over the limit
    BODY.replace(b'"name":"points"', b'"name":"x"'),
    BODY[:AT] + b"2000000," + BODY[AT:],  # out of range, and one number too many
    BODY[:AT] + b"2000000" + BODY[AT + BODY[AT:].index(b","):],  # out of range
    BODY[:AT] + b"1e400" + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b"NaN" + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b"true" + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b'"1"' + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b"18446744073709551617" + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b"-9223372036854775809" + BODY[AT + BODY[AT:].index(b","):],  # a RuntimeError
    BODY[:AT] + b"1" + b"0" * 30 + BODY[AT + BODY[AT:].index(b","):],
    BODY[:AT] + b"[1]," + BODY[AT:],
    BODY[:AT] + b"[1,2]," + BODY[AT + BODY[AT:].index(b",") + 1:],  # a row among numbers
    BODY.replace(b'"data":[', b'"data":[[').replace(b']}]', b']]}]'),  # one row of 3000
    BODY.replace(b'"data":', b'"data":[],"data":'),  # a duplicate key
    BODY.replace(b'{"name":"points"', b'{"name":"points","parameters":{"binary_data_size":8}'),
    BODY.replace(b'"inputs":[{', b'"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":'
                 b'[1]},{'),
    BODY + b"x",
    BODY[:-1],
    b"[" + BODY + b"]",
], ids=lambda raw: repr(raw[:12] + b"..." + raw[-20:]))
def test_a_changed_request_gets_the_general_paths_answer(raw):
    _same_as_general(raw)
    assert _decoded(raw, fast=True)[0] == "error"


@pytest.mark.parametrize("raw", [
    BODY.replace(b'"id":"r1"', b'"id":"\\u0000"'),  # the stand-in itself, elsewhere
    BODY.replace(b'"id":"r1"', b'"\\u0000":1'),
    BODY.replace(b'"id":"r1"', b'"id":"\\"data\\": [1,2]", "x": {"data": 1}'),
    orjson.dumps(_doc(NESTED)).replace(b"]]", b"] ]"),
])
def test_a_valid_request_the_bulk_path_cannot_prove_is_left_to_the_general_path(raw):
    assert not _same_as_general(raw)
    assert _decoded(raw, fast=False)[0] == "ok"


def test_random_edits_never_make_it_decode_otherwise_than_the_general_path():
    """Random insertions, deletions and replacements of JSON's own bytes, 2,000 of them:
    each result decodes the same, or raises the same error, on both paths."""
    alphabet = b'[]{},:" 0123456789.eE+-\nntruefalsenull'
    rng, taken = random.Random(17), 0
    for _ in range(2000):
        raw = bytearray(BODY if rng.random() < 0.5 else orjson.dumps(_doc(NESTED)))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw))
            edit = rng.choice(("insert", "delete", "replace"))
            if edit == "insert":
                raw.insert(at, rng.choice(alphabet))
            elif edit == "delete":
                del raw[at]
            else:
                raw[at] = rng.choice(alphabet)
        taken += _same_as_general(bytes(raw))
    assert 0 < taken < 2000  # some edits keep the data valid, many do not
