"""What every answer carries: request ids, nosniff and no-store; no 500s and no leaks."""

import gzip
import re

import pytest

from .helpers import (
    JSON,
    POINTS,
    PROBLEM,
    XOR,
    assert_problem,
    training_body,
)

# ----- no 500s -----


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "/npz"), ("delete", ""), ("post", "/predict")],
    ids=["get", "npz", "delete", "predict"],
)
def test_a_huge_version_number_is_not_found_not_a_crash(shared, method, suffix):
    kwargs = {"json": {"x1": 0, "x2": 0}} if method == "post" else {}

    r = getattr(shared, method)(f"/v1/models/m/versions/{'9' * 300}{suffix}", **kwargs)

    assert r.status_code in (404, 422), r.get_data(as_text=True)
    assert_problem(r, r.status_code)


@pytest.mark.parametrize(("method", "path"), [
    ("delete", "/v1/models/m//versions/1"), ("get", "/v1/trainings//events"),
    ("post", "/v1/models//predict"), ("post", "/v2//models/m/infer"),
])
def test_a_path_with_an_empty_segment_is_not_found_not_redirected(shared, method, path):
    # Werkzeug merged the slashes with a 308 (an HTML body, its Location on the Host header):
    # a client following it made a DELETE of a URL it never wrote
    r = getattr(shared, method)(path, headers={"Host": "evil.example"})
    assert r.status_code == 404 and "Location" not in r.headers, (r.status_code, r.headers)
    if path.startswith("/v2"):
        assert r.mimetype == "application/json" and r.json["error"]
    else:
        assert_problem(r, 404)


# ----- headers -----


def test_request_id_is_echoed_when_sent(shared):
    r = shared.get("/v1/models", headers={"X-Request-ID": "abc-123_x.y:z"})

    assert r.headers["X-Request-ID"] == "abc-123_x.y:z"


@pytest.mark.parametrize("sent", [None, "x" * 300, "has space", "", "semi;colon"])
def test_request_id_is_generated_when_missing_or_invalid(shared, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}

    first = shared.get("/v1/models", headers=headers).headers["X-Request-ID"]
    second = shared.get("/v1/nope", headers=headers).headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_request_id_is_echoed_on_problems_too(shared):
    r = shared.get("/v1/models/nope", headers={"X-Request-ID": "req-42"})

    assert_problem(r, 404, "Model Not Found")
    assert r.headers["X-Request-ID"] == "req-42"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/v1/models", {}),
        ("get", "/v1/models/m", {}),
        ("post", "/v1/models/m/predict", {"json": {"x1": 0, "x2": 0}}),
        ("get", "/v1/models/m/versions/1/npz", {}),
        ("get", "/v1/trainings", {}),
        ("post", "/v1/trainings", {"json": {**XOR, "model": "UPPER"}}),
        ("get", "/v1/nope", {}),
        ("get", "/healthz", {}),
        ("get", "/openapi.json", {}),
    ],
)
def test_answers_carry_nosniff_and_no_store(shared, method, path, kwargs):
    r = getattr(shared, method)(path, **kwargs)

    assert r.status_code < 500
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"


# ----- no leaks -----


def test_no_error_shows_a_store_path_or_a_traceback(shared):
    store = shared.application.extensions["nnserve"].settings.store_dir
    job_id = shared.get("/v1/trainings?model=m").json["jobs"][0]["id"]
    requests = [
        ("get", "/v1/models/nope", {}),
        ("get", "/v1/models/UPPER", {}),
        ("get", "/v1/models/m/versions/7", {}),
        ("delete", "/v1/models/m/versions/7", {}),
        ("get", "/v1/models/m/versions/0/npz", {}),
        ("post", "/v1/models/m/versions", {"data": b"PK\x03\x04junk",
                                           "content_type": "application/octet-stream"}),
        ("post", "/v1/models/m/versions", {"data": b"{}", "content_type": JSON}),
        ("post", "/v1/models/m/predict", {"data": b"[" * 100_000, "content_type": JSON}),
        ("post", "/v1/models/m/predict", {"json": {"points": [[0, "x"]]}}),
        ("post", "/v1/trainings", {"json": training_body(dataset={**POINTS, "labels": [0] * 4})}),
        ("post", "/v1/trainings", {"json": training_body(training={"epochs": 10**9})}),
        ("delete", f"/v1/trainings/{job_id}", {}),
        ("get", "/v1/trainings/nope", {}),
        ("put", "/v1/trainings", {}),
    ]
    for method, path, kwargs in requests:
        r = getattr(shared, method)(path, **kwargs)

        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert r.mimetype == PROBLEM
        text = r.get_data(as_text=True)
        assert str(store.parent) not in text, text
        assert "Traceback" not in text and 'File "' not in text, text


# ----- compressed bodies -----


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "deflate, gzip", "br"])
@pytest.mark.parametrize(("path", "content_type"), [
    ("/v1/models/m/predict", JSON), ("/v1/trainings", JSON),
    ("/v1/models/m/versions", "application/octet-stream")])
def test_a_compressed_body_is_415_saying_to_send_it_uncompressed(shared, path, content_type,
                                                                 coding):
    """It was a 400 "malformed JSON": the gzip bytes parsed as the body."""
    body = gzip.compress(b'{"points": [[0.1, 0.9]]}')
    r = shared.post(path, data=body, headers={"Content-Type": content_type,
                                              "Content-Encoding": coding})

    assert_problem(r, 415, "Unsupported Media Type",
                   f"Content-Encoding '{coding}' is not accepted: send the body uncompressed")
    assert r.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/v1/models", "/v2/health/live"])
def test_a_content_encoding_without_a_body_is_no_reason_to_refuse(shared, path):
    assert shared.get(path, headers={"Content-Encoding": "gzip"}).status_code == 200


def test_an_identity_encoded_body_is_read_as_sent(shared):
    r = shared.post("/v1/models/nobody/predict", json={"x1": 0, "x2": 0},
                    headers={"Content-Encoding": "identity"})

    assert_problem(r, 404, "Model Not Found")


def test_a_compressed_v2_body_is_the_protocols_415(shared):
    r = shared.post("/v2/models/m/infer", data=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})

    assert r.status_code == 415 and "send the body uncompressed" in r.json["error"]


@pytest.mark.parametrize("path", ["/v1/models/m/predict", "/v2/models/m/infer"])
def test_a_transfer_coding_nothing_decodes_is_a_501_in_the_app_too(shared, path):
    # where stock gthread reads the request (TLS, the PROXY protocol) the worker's refusal
    # from the head does not run: gunicorn let "gzip, chunked" through, read undecoded
    r = shared.post(path, data=b'{"x1": 0, "x2": 1}', content_type=JSON,
                    headers={"Transfer-Encoding": "gzip, chunked"})
    assert r.status_code == 501, r.data[:300]
    detail = r.json["error"] if path.startswith("/v2") else r.json["detail"]
    assert detail.startswith("Transfer-Encoding 'gzip, chunked' is not supported")
