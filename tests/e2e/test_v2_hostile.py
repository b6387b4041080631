"""Hostile /v2 requests against real gunicorn: each gets the protocol's 4xx {"error": ...}.

The refusals of the API tests are sent again over real HTTP, with bodies cut short
on the wire as well; afterwards the server still answers a real inference.
"""

import json
import socket

import numpy as np
import pytest
import requests

from tests.api.test_v2_errors import BINARY_CASES, JSON_CASES, binary

from .server import Server

pytestmark = pytest.mark.e2e

INFER = "/v2/models/xor/infer"
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("v2hostile") / "store", workers=3,
                    NNSERVE_MAX_PREDICT_POINTS=1000).start()
    r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30}, timeout=40,
                      json={"model": "xor", "dataset": {"kind": "xor"}})
    assert r.json()["status"] == "succeeded", r.text
    yield server
    server.stop()


def refused(r, status, *words):
    assert r.status_code == status, r.text[:300]
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Request-ID"]
    body = r.json()
    assert set(body) == {"error"}
    for word in words:
        assert word.lower() in body["error"].lower(), body["error"]


def still_infers(srv):
    body, length = binary()
    r = requests.post(srv.url + INFER, data=body, headers={HEADER: str(length)}, timeout=5)
    assert r.status_code == 200, r.text[:300]
    assert [o["name"] for o in r.json()["outputs"]] == ["label", "probability"]


@pytest.mark.parametrize(("body", "words"), [(b, w) for b, *w in JSON_CASES.values()],
                         ids=JSON_CASES.keys())
def test_bad_json_requests(srv, body, words):
    refused(requests.post(srv.url + INFER, json=body, timeout=10), 400, *words)


@pytest.mark.parametrize(("make", "header", "words"),
                         [(m, h, w) for m, h, *w in BINARY_CASES.values()],
                         ids=BINARY_CASES.keys())
def test_bad_binary_requests(srv, make, header, words):
    body, length = make()
    value = str(length) if header is None else header(length)
    # tritonclient's way: no Content-Type at all
    r = requests.post(srv.url + INFER, data=body, headers={HEADER: value}, timeout=10)
    refused(r, 400, *words)


def _send(srv, head, body):
    """Return the raw answer to a request whose body may end before its Content-Length."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("sent", [0, 10, 200], ids=["nothing", "part of the JSON",
                                                    "part of the tensor"])
def test_a_body_cut_short_on_the_wire_is_400(srv, sent):
    body, length = binary(raw=np.zeros((100, 2)).tobytes(), shape=(100, 2))
    head = (f"POST {INFER} HTTP/1.1\r\nHost: x\r\n{HEADER}: {length}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()

    answer = _send(srv, head, body[:sent])

    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"application/json" in rest.split(b"\r\n\r\n")[0]
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"].startswith("the body ended")
    still_infers(srv)


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(srv):
    head = (f"POST {INFER} HTTP/1.1\r\nHost: x\r\n{HEADER}: 10\r\n"
            f"Content-Length: {100 * 2**20}\r\nConnection: close\r\n\r\n").encode()

    answer = _send(srv, head, b"{}")

    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'{"error":"request body over the limit' in answer
    still_infers(srv)


def test_over_the_points_limit_in_binary_is_400_naming_the_limit(srv):
    points = np.zeros((1001, 2))
    body, length = binary(raw=points.tobytes(), shape=points.shape)
    r = requests.post(srv.url + INFER, data=body, headers={HEADER: str(length)}, timeout=10)
    refused(r, 400, "max_predict_points is 1001", "NNSERVE_MAX_PREDICT_POINTS")
    still_infers(srv)
