"""Tensors of the Open Inference Protocol to and from NumPy arrays, JSON or binary.

A request has one input, ``points: (n, 2)``, FP32 or FP64, its data in the JSON
(flat or nested, row-major) or, with the binary tensor extension, in the bytes
after the JSON header, whose length the Inference-Header-Content-Length header
gives. An answer has the outputs ``label: (n,)`` INT64 and ``probability: (n,)``
in the input's float type, each as JSON data or as little-endian bytes after the
answer's JSON header, in the order of the outputs. Nothing is decided from
Content-Type: clients send none, or application/json over a binary body.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from .. import jsoncodec
from ..errors import LimitExceeded, ServiceError
from ..nn.datasets import check_points
from ..schemas import bulk
from .schemas import InferenceRequest

HEADER_LENGTH = "Inference-Header-Content-Length"
INPUT = "points"
FLOATS = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES", "BF16")
OUTPUTS = ("label", "probability")
NUMBERS = frozenset({float, int})
_DATA_KEY = b'"data"'
_STAND_IN = "\0"  # the data's stand-in while the rest of a header is decoded
_STAND_IN_JSON = b'"\\u0000"'


class BadTensor(ServiceError):
    """An inference request that breaks the protocol or the model's signature."""

    status = 400
    title = "Bad Request"


@dataclass(frozen=True)
class Inference:
    """A decoded request: the points, their datatype, and the outputs asked for."""

    id: str | None
    x: object  # (n, 2) float64, checked
    datatype: str
    outputs: tuple  # ((name, as binary), ...)


def decode(body: bytes, header_length, max_points, fast=True) -> Inference:
    """Return the Inference of a request body; BadTensor (or LimitExceeded) naming the fault.
    fast=False never takes the bulk path (_bulk), whose answers must not differ."""
    header, tail = split(body, header_length)
    large = fast and not tail and len(header) >= bulk.BULK_BYTES
    doc, values = (_bulk(header) if large else None) or (None, None)
    if doc is None:
        try:
            doc = jsoncodec.loads(header)
        except ValueError as exc:
            raise BadTensor(f"malformed JSON: {exc}") from None
    req = InferenceRequest.model_validate(doc)
    if len(req.inputs) != 1 or req.inputs[0].name != INPUT:
        names = [i.name for i in req.inputs]
        raise BadTensor(f"the model takes one input, {INPUT!r}; got {names}"[:300])
    tensor = req.inputs[0]
    n = _rows(tensor, max_points)
    size = tensor.parameters and tensor.parameters.binary_data_size
    if size is None:
        if tail:
            raise BadTensor(f"{len(tail)} bytes follow the JSON header but no input is binary")
        x = _from_json(tensor.data, n, tensor.datatype) if values is None \
            else _from_values(values, n, tensor.datatype)
    else:
        if tensor.data is not None:
            raise BadTensor(f"input {INPUT!r} has both data and binary_data_size")
        x = _checked(_from_bytes(tail, size, n, tensor.datatype))
    return Inference(req.id, x, tensor.datatype, _outputs(req))


def split(body: bytes, header_length):
    """Return (JSON header, binary tail) of a body and its Inference-Header-Content-Length."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit() or not text.isascii():
        raise BadTensor(f"Inference-Header-Content-Length is not a byte count: {text!r:.40}")
    if len(text) > 18 or int(text) > len(body):  # 18 digits: int() never meets its limit
        raise BadTensor(f"Inference-Header-Content-Length {text:.40} is longer than the body "
                        f"({len(body)} bytes)")
    return body[:int(text)], body[int(text):]


def _rows(tensor, max_points):
    """Return n of the input's shape [n, 2], after checking its datatype and the limit."""
    if tensor.datatype not in FLOATS:
        known = "unknown datatype" if tensor.datatype not in DATATYPES else "datatype"
        raise BadTensor(f"input {INPUT!r}: {known} {tensor.datatype!r:.40}; "
                        "send FP32 or FP64")
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != 2 or shape[0] < 1:
        raise BadTensor(f"input {INPUT!r} has shape [n, 2] with n >= 1, got {shape}"[:200])
    if shape[0] > max_points:
        raise LimitExceeded("max_predict_points", shape[0], max_points, ("inputs", 0, "shape"))
    return shape[0]


def _bulk(header):
    """Return (the document, the input's data as float64 values) of a large JSON header
    whose one "data" array holds numbers only, flat or in pairs; None for any other.

    A fast path for the 100,000-point /v2 JSON request (issue 16: >= 1.5x MLServer's
    req/s; benchmarks/RESULTS.md, "The /v2 bulk path"): the array's text is read straight
    into doubles (schemas/bulk.py), the rest of the header decoded as usual with a
    stand-in in its place. The stand-in must then be the document's only one and stand
    at inputs[0].data, so the array was that value; else the general path decides."""
    key = header.find(_DATA_KEY)
    if key < 0 or header.find(_DATA_KEY, key + len(_DATA_KEY)) >= 0:
        return None
    colon = header.find(b":", key + len(_DATA_KEY))
    start = header.find(b"[", colon)
    if colon < 0 or start < 0 or header[key + len(_DATA_KEY):colon].strip() \
            or header[colon + 1:start].strip():
        return None
    pairs = header[start + 1:start + 64].lstrip()[:1] == b"["
    # Where the array ends, if it holds numbers only; "] ]" (whitespace between) is left
    # to the general path, its structure then not the one expected.
    end = header.find(b"]]" if pairs else b"]", start) + (2 if pairs else 1)
    if end <= start:
        return None
    try:
        doc = jsoncodec.loads(header[:start] + _STAND_IN_JSON + header[end:])
    except ValueError:
        return None
    try:
        placed = doc["inputs"][0]["data"] == _STAND_IN
    except (TypeError, KeyError, IndexError):
        return None
    if not placed or _stand_ins(doc) != 1:
        return None
    values = bulk.numbers(header[start:end], pairs=pairs)
    return None if values is None else (doc, values)


def _stand_ins(doc):
    """Return how many keys and values of the decoded JSON doc are the stand-in."""
    if isinstance(doc, dict):
        return sum((key == _STAND_IN) + _stand_ins(value) for key, value in doc.items())
    if isinstance(doc, list):
        return sum(map(_stand_ins, doc))
    return doc == _STAND_IN


def _from_json(data, n, datatype):
    """Return the (n, 2) array of JSON data, flat ([x1, x2, ...]) or nested ([[x1, x2], ...])."""
    if not isinstance(data, list):
        raise BadTensor(f"input {INPUT!r} has no data (a list of numbers, or binary data)")
    if data and type(data[0]) is list:  # nested: n rows of 2 numbers
        if set(map(type, data)) != {list} or set(map(len, data)) != {2}:
            raise BadTensor(f"input {INPUT!r}: nested data must be rows of 2 numbers")
        data = list(itertools.chain.from_iterable(data))
    _count(len(data), n)
    if not set(map(type, data)) <= NUMBERS:  # bool is not a number here, nor "1.5"
        raise BadTensor(f"input {INPUT!r}: data must be numbers")
    try:
        values = np.array(data, dtype=np.float64)
    except OverflowError:  # an integer past a float64
        raise BadTensor(f"input {INPUT!r}: a number is out of range") from None
    return _from_values(values, n, datatype)


def _count(elements, n):
    if elements != 2 * n:
        raise BadTensor(f"input {INPUT!r} has {elements} elements; shape [{n}, 2] "
                        f"needs {2 * n}")


def _from_values(values, n, datatype):
    """Return the checked (n, 2) points of 2n float64 values, the input's datatype."""
    _count(len(values), n)
    x = _checked(values.reshape(n, 2))
    # FP32 data is the float32 nearest each number, as a binary FP32 tensor would hold
    return x if datatype == "FP64" else x.astype(np.float32).astype(np.float64)


def _checked(x):
    """Return x (n, 2) as checked float64 points: finite, within the coordinates' range."""
    try:
        return check_points(x)
    except ValueError as exc:
        raise BadTensor(f"input {INPUT!r}: {exc}") from None


def _from_bytes(tail, size, n, datatype):
    """Return the (n, 2) array of the input's binary data, the whole tail after the header."""
    dtype = FLOATS[datatype]
    if size != n * 2 * dtype.itemsize:
        raise BadTensor(f"input {INPUT!r}: binary_data_size {size} is not {n} x 2 x "
                        f"{dtype.itemsize} bytes of {datatype}")
    if len(tail) != size:
        raise BadTensor(f"{len(tail)} bytes follow the JSON header; the inputs' "
                        f"binary_data_size add up to {size}")
    return np.frombuffer(tail, dtype).reshape(n, 2)


def _outputs(req):
    """Return ((name, as binary), ...) of the outputs asked for, in the order asked."""
    every = bool(req.parameters and req.parameters.binary_data_output)
    names = [out.name for out in req.outputs or ()]
    if not names:  # an empty list asks for nothing in particular: every output
        return tuple((name, every) for name in OUTPUTS)
    if len(set(names)) != len(names) or not set(names) <= set(OUTPUTS):
        raise BadTensor(f"outputs are one or more of {list(OUTPUTS)}, each once; got "
                        f"{names}"[:300])
    return tuple((out.name, every if out.parameters is None or out.parameters.binary_data
                  is None else out.parameters.binary_data) for out in req.outputs)


def encode(name, version, inference, scores, labels):
    """Return (body, JSON header length or None) of the answer: JSON, or JSON then bytes."""
    n, outputs, tails = len(scores), [], []
    for output, binary in inference.outputs:
        if output == "label":
            datatype, values = "INT64", labels.astype("<i8", copy=False)
        else:
            datatype = inference.datatype
            with np.errstate(over="ignore"):  # checked: a finite FP64 score may not fit FP32
                values = scores.astype(FLOATS[datatype], copy=False)
            if values.dtype != scores.dtype and not np.isfinite(values).all():
                raise BadTensor(f"the model's output is not a finite number in {datatype} "
                                "for these points")
        tensor = {"name": output, "datatype": datatype, "shape": [n]}
        if binary:
            tails.append(values.tobytes())
            tensor["parameters"] = {"binary_data_size": len(tails[-1])}
        else:
            tensor["data"] = values  # jsoncodec writes the array itself
        outputs.append(tensor)
    doc = {"model_name": name, "model_version": str(version), "outputs": outputs}
    if inference.id is not None:
        doc["id"] = inference.id
    header = jsoncodec.dumps(doc)
    if not tails:
        return header, None
    return b"".join([header, *tails]), len(header)
