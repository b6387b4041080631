"""/v1 predictions in bulk: a large body's points read straight into an array, and the
answer written from the arrays, with no Python object per point.

A fast path for the 100,000-point /v1 request (issue 16: >= 1.5x MLServer's req/s;
benchmarks/RESULTS.md, "The /v1 bulk path"): decoding a list per point, validating a
tuple per point and writing an object per point cost most of that request. read() takes
only a body it can prove well formed and valid; anything else (a string, an object
point, a missing number, one out of range, too many points, bad syntax) returns None
and goes through PredictRequest, whose answer (a 400 or 422 naming the field) is then
the only one. write() serves every /v1 prediction, small or bulk.
"""

import numpy as np
import orjson

from .. import jsoncodec
from ..nn.datasets import MAX_COORDINATE
from ..nn.model import SMALL_ROWS
from .requests import PredictRequest

BULK_BYTES = 16 * 1024  # from about 400 points on: below it the general path costs less
# Every byte of a points array's text as one of: "0" (a character of a number), the
# structure ("[", "]", ","), " " (JSON's whitespace) or NUL (anything else).
_NUMBER, _SPACE = b"0123456789+-.eE", b" \t\n\r"
_SHAPE = bytes(48 if b in _NUMBER else b if b in b"[]," else 32 if b in _SPACE else 0
               for b in range(256))
_UNBRACKETED = bytes.maketrans(b"[]", b"  ")
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
    shape = text.translate(_SHAPE)
    if b"\0" in shape:
        return None
    structure = shape.translate(None, b"0 ")
    n = (len(structure) - 1) // 4
    if n <= SMALL_ROWS or structure != b"[" + b"[,]," * (n - 1) + b"[,]]":
        return None  # a few points: Model.classify computes them on floats, predict_array not
    if not _numbers_inside(shape.translate(None, b" ") if b" " in shape else shape):
        return None
    # The numbers alone, their brackets made spaces: orjson then refuses a missing number
    # ("[ , 2 ]"), one where none belongs ("[ 1,2 3, ...": "2 3"), or a malformed one.
    flat = bytearray(text.translate(_UNBRACKETED))
    flat[0], flat[-1] = ord("["), ord("]")
    try:
        values = orjson.loads(flat)
    except orjson.JSONDecodeError:
        return None
    return np.array(values, dtype=np.float64).reshape(n, 2)


def _numbers_inside(shape):
    """Return whether every inner "[" of a pairs shape (whitespace removed) is followed and
    not preceded by a number, and every inner "]" preceded and not followed by one: with the
    structure checked, a number then stands only where one belongs (else "[0.1[,0.9]]"
    would pass, its 0.1 filling the slot it left empty)."""
    view = np.frombuffer(shape, np.uint8)
    inner = np.flatnonzero(view > ord("0"))[1:-1]  # the brackets: "[", "]", "[", "]", ...
    opens, closes, digit = inner[::2], inner[1::2], ord("0")
    return bool((view[opens + 1] == digit).all() and (view[opens - 1] != digit).all()
                and (view[closes - 1] == digit).all() and (view[closes + 1] != digit).all())
