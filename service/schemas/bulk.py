"""/v1 predictions in bulk: a large body's points read straight into an array, and the
answer written from the arrays, with no Python object per point.

A fast path for the 100,000-point /v1 request (issue 16: >= 1.5x MLServer's req/s;
benchmarks/RESULTS.md, "The /v1 bulk path"): decoding a list per point, validating a
tuple per point and writing an object per point cost most of that request. read() takes
only a body it can prove well formed and valid; anything else (a string, an object
point, a missing number, one out of range, too many points, bad syntax) returns None
and goes through PredictRequest, whose answer (a 400 or 422 naming the field) is then
the only one. write() serves every /v1 prediction, small or bulk. numbers() reads an
array of numbers for both, and for /v2's bulk path (inference/tensors.py).
"""

import threading

import numpy as np
import orjson
import simdjson

from .. import jsoncodec
from ..nn.datasets import MAX_COORDINATE
from ..nn.model import SMALL_ROWS
from .requests import PredictRequest

BULK_BYTES = 16 * 1024  # from about 400 points on: below it the general path costs less
_NUMBER, _SPACE = b"0123456789+-.eE", b" \t\n\r"
_local = threading.local()
_ITEM = b'{"label":0,"probability":'
_LABEL_DIGIT = _ITEM.index(b"0")


def read(raw: bytes, limits):
    """Return (x, threshold) of a predict body {"points": [[x1, x2], ...], "threshold": t}
    whose points are all valid, x an (n, 2) float64 array; None for any other body."""
    if len(raw) < BULK_BYTES:
        return None
    span = _points_span(raw)
    if span is None:
        return None
    start, end = span
    rest = _rest(raw[:start] + b"null" + raw[end:], limits)
    if rest is None:
        return None
    x = _pairs(raw[start:end])
    limit = limits.get("max_predict_points")
    if x is None or (limit is not None and len(x) > limit):
        return None
    if not (np.abs(x) <= MAX_COORDINATE).all():  # also refuses NaN; the 422 names the point
        return None
    return x, rest.threshold


def write(name, version, scores, labels) -> bytes:
    """Return the JSON of a /v1 prediction: {"model", "version", "predictions": [{"label",
    "probability"}, ...]}, scores and labels (0 or 1) as lists or arrays, scores finite."""
    head = b'{"model":%s,"version":%d,"predictions":[' % (jsoncodec.dumps(name), version)
    probabilities = orjson.dumps(scores, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    text = bytearray(head + _ITEM + probabilities.replace(b",", b"}," + _ITEM) + b"}]}")
    # Every item was written with label 0; each one's "{" is the only one after head.
    view = np.frombuffer(text, np.uint8)
    label_at = len(head) + _LABEL_DIGIT + np.flatnonzero(view[len(head):] == ord("{"))
    view[label_at] += np.asarray(labels, dtype=np.uint8)
    return bytes(text)


def _points_span(raw):
    """Return (start, end) of the text after '"points":' up to the body's last ']'."""
    key = raw.find(b'"points"')
    if key < 0:
        return None
    colon = raw.find(b":", key + 8)
    start, end = raw.find(b"[", colon), raw.rfind(b"]") + 1
    if colon < 0 or start < 0 or raw[key + 8:colon].strip() or raw[colon + 1:start].strip():
        return None
    return start, end


def _rest(small, limits):
    """Return the PredictRequest of the body with its points cut out (null in their place),
    or None unless that body is an object of "points" (the null) and a numeric threshold.

    The null can then only stand where the points were: it is the one value that is not a
    number, and the keys are two fixed strings."""
    try:
        doc = jsoncodec.loads(small)
    except ValueError:
        return None
    if type(doc) is not dict or "points" not in doc or doc["points"] is not None:
        return None
    if set(doc) - {"points", "threshold"} or type(doc.get("threshold", 0.5)) not in (int, float):
        return None
    try:
        return PredictRequest.model_validate({**doc, "points": [[0, 0]]}, context=limits)
    except ValueError:  # pydantic's ValidationError: the general path names the field
        return None


def _pairs(text):
    """Return the (n, 2) array of text if it is exactly [[number, number], ...]."""
    values = numbers(text, pairs=True)
    n = 0 if values is None else len(values) // 2
    if n <= SMALL_ROWS:
        return None  # a few points: Model.classify computes them on floats, predict_array not
    return values.reshape(n, 2)


def numbers(text, pairs=False):
    """Return the float64 values of text if it is exactly a JSON array of numbers, flat
    ([n, n, ...]) or with pairs ([[n, n], ...]), row-major; None for any other text."""
    # Numbers and whitespace deleted, anything else stays and breaks the structure
    structure = text.translate(None, _NUMBER + _SPACE)
    if pairs:
        n = (len(structure) - 1) // 4
        expected = b"[" + b"[,]," * (n - 1) + b"[,]]" if n else b""
    else:
        expected = b"[" + b"," * (len(structure) - 2) + b"]"
    if structure != expected or len(structure) < 3:  # "[]" or "[1]": not a point
        return None
    # simdjson then refuses what is not JSON ("[0.1[,0.9]]", "[1,2 3]", "1e", NaN, 1e400)
    # and copies the numbers into a buffer of doubles, with no Python float between. It
    # raises ValueError for most refusals but RuntimeError for an integer past 64 bits
    # (BIGINT_ERROR); whatever it refuses, the general path answers for.
    try:
        values = _parser().parse(text).as_buffer(of_type="d")
    except (ValueError, TypeError, RuntimeError):
        return None
    return np.frombuffer(values, np.float64)


def _parser():
    """Return this thread's simdjson parser (one parses one document at a time)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser
