"""Refused requests: unknown routes and methods, bodies too large, not JSON or malformed."""

import io
import json

import pytest
from flask import Response
from werkzeug.test import EnvironBuilder

from .helpers import (
    FAST,
    JSON,
    POINTS,
    XOR,
    assert_problem,
    train,
    training_body,
)

# ----- routing, methods, sizes, media types, syntax -----


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/nope", "/v1/models/m/versions/1/x"])
def test_unknown_route_is_404(shared, path):
    assert_problem(shared.get(path), 404, "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/v1/models", {"GET"}),
        ("patch", "/v1/trainings", {"GET", "POST"}),
        ("get", "/v1/models/m/predict", {"POST"}),
        ("post", "/healthz", {"GET"}),
        ("delete", "/v1/models/m/versions/1/npz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(shared, method, path, allowed):
    r = getattr(shared, method)(path)

    assert_problem(r, 405, "Method Not Allowed")
    assert allowed <= {m.strip() for m in r.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/v1/trainings",
         {"json": training_body(dataset={**POINTS, "points": [[0.5, 0.5]] * 300})}),
        ("/v1/models/m/predict", {"json": {"points": [[0.5, 0.5]] * 300}}),
        ("/v1/models/m/versions", {"data": b"x" * 3000, "content_type": "application/zip"}),
        ("/v1/models/m/versions", {"data": {"file": (io.BytesIO(b"x" * 3000), "m.npz")}}),
    ],
    ids=["training", "predict", "upload", "multipart"],
)
def test_body_over_max_body_bytes_is_413(make_client, path, kwargs):
    client = make_client(max_body_bytes=2048)

    r = client.post(path, **kwargs)

    assert_problem(r, 413, "Request Entity Too Large",
                   "request body over the limit of 2048 bytes (NNSERVE_MAX_BODY_BYTES)")


@pytest.mark.parametrize("path", ["/v1/trainings", "/v1/models/m/predict"])
@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("text/plain", "'text/plain'"), (None, "'no content type'"),
     ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'")],
)
def test_body_not_sent_as_json_is_415(shared, path, content_type, shown):
    r = shared.post(path, data=json.dumps(XOR), content_type=content_type)

    assert_problem(r, 415, "Unsupported Media Type",
                   f"send the body as application/json (got {shown})")


@pytest.mark.parametrize("path", ["/v1/trainings", "/v1/models/m/predict"])
@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "malformed JSON: "),
        (b"{", "malformed JSON: "),
        (b"{'x1': 1}", "malformed JSON: "),
        (b'{"x1": 1,}', "malformed JSON: "),
        (b"\xff\xfe{}", "malformed JSON: "),
        (b"[" * 100_000, "malformed JSON: "),
        (b'{"a":' * 100_000, "malformed JSON: "),
        (b'{"model": "a", "model": "b"}', "duplicate key 'model'"),
        (b'{"points": [{"x1": 1, "x2": 2, "x1": 3}]}', "duplicate key 'x1'"),
    ],
    ids=["empty", "open", "single quotes", "trailing comma", "not utf-8", "deep arrays",
         "deep objects", "duplicate", "nested duplicate"],
)
def test_malformed_json_is_400(shared, path, raw, detail):
    r = shared.post(path, data=raw, content_type=JSON)

    assert_problem(r, 400, "Bad Request", detail)


def _post_environ(client, path, body, **environ):
    """Return the response to a POST of body whose WSGI environ is then changed by environ."""
    env = EnvironBuilder(path=path, method="POST", data=body, content_type=JSON).get_environ()
    env.update(environ)
    return Response.from_app(client.application, env)


def test_a_body_shorter_than_its_content_length_is_400(shared):
    body = b'{"x1": 0.5, "x2": 0.5}'

    r = _post_environ(shared, "/v1/models/m/predict", body, CONTENT_LENGTH="100")

    assert_problem(r, 400, "Bad Request", f"the body ended after {len(body)} of 100 bytes")


@pytest.mark.parametrize("limit", [None, 2048])
def test_a_chunked_body_is_read_whole_or_refused_over_the_limit(make_client, limit):
    client = make_client(**({} if limit is None else {"max_body_bytes": limit}))
    train(client, "m", training=FAST)
    points = [[0.5, 0.5]] * 300  # about 3,600 bytes
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}

    r = _post_environ(client, "/v1/models/m/predict", json.dumps({"points": points}).encode(),
                      **chunked)

    if limit is None:
        assert r.status_code == 200, r.json
        assert len(r.json["predictions"]) == 300
    else:
        assert_problem(r, 413, "Request Entity Too Large")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"x1": 0.5, "x2": 0.5}', "application/json; charset=utf-8"),
        ('{"x1": 0.5, "x2": 0.5}'.encode("utf-8-sig"), JSON),
        ('{"x1": 0.5, "x2": 0.5}'.encode("utf-16"), JSON),
    ],
    ids=["charset parameter", "utf-8 with BOM", "utf-16"],
)
def test_json_is_read_as_json_loads_reads_it(shared, body, content_type):
    r = shared.post("/v1/models/m/predict", data=body, content_type=content_type)

    assert r.status_code == 200, r.json
    assert len(r.json["predictions"]) == 1
