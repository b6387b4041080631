"""Request framing against real gunicorn: malformed chunked bodies and Werkzeug's form limits
are 4xx problems naming what is wrong, never a 500."""

import json
import socket

import pytest
import requests

from .server import Server

pytestmark = pytest.mark.e2e

TARGETS = [("/v1/models/m/predict", "application/json"),
           ("/v1/models/m/versions", "application/octet-stream")]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("framing") / "store", workers=2).start()
    yield server
    server.stop()


def raw_post(srv, path, content_type, body):
    """Send a chunked POST over a plain socket; return (status, headers text, body)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(head + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), payload


@pytest.mark.parametrize("size", [b"zz", b"-1"])
@pytest.mark.parametrize(("path", "content_type"), TARGETS)
def test_malformed_chunk_size_is_a_400_problem(srv, path, content_type, size):
    status, head, payload = raw_post(srv, path, content_type, size + b"\r\n{}\r\n0\r\n\r\n")
    assert status == 400, payload[:300]
    assert "application/problem+json" in head
    assert "chunk" in json.loads(payload)["detail"].lower()


def test_form_limits_are_named_not_the_body_limit(srv):
    url = f"{srv.url}/v1/models/m/versions"
    fields = {f"f{i}": "x" for i in range(1001)}
    r = requests.post(url, data=fields, files={"file": ("m.npz", b"PK")}, timeout=10)
    assert r.status_code == 413 and "1000 parts" in r.json()["detail"], r.text
    r = requests.post(url, data={"note": "x" * 600_000}, files={"file": ("m.npz", b"PK")},
                      timeout=10)
    assert r.status_code == 413 and "500000 bytes" in r.json()["detail"], r.text
    assert "NNSERVE_MAX_BODY_BYTES" not in r.json()["detail"]


def raw(srv, request):
    """Send request bytes over a plain socket; return (status, headers text, body)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), payload


@pytest.mark.parametrize("request_", [
    b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\nConnection: close\r\n\r\n{}",
    b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\n{}",
    b"GET {path}?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # 414
], ids=["sign", "twice", "long-line"])
@pytest.mark.parametrize("path", [b"/v2/models/m/infer", b"/v1/models/m/predict"])
def test_refusals_gunicorn_makes_are_the_protocols_shape_with_a_request_id(srv, request_,
                                                                           path):
    status, head, payload = raw(srv, request_.replace(b"{path}", path))
    assert 400 <= status < 500, payload[:300]
    assert "X-Request-ID: " in head and "nosniff" in head
    if path.startswith(b"/v2"):  # the Open Inference Protocol's {"error": ...}
        assert "Content-Type: application/json" in head and json.loads(payload)["error"]
    else:
        assert "application/problem+json" in head and json.loads(payload)["status"] == status


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity, chunked"])
@pytest.mark.parametrize("chunks", [1, 40], ids=["one-read", "many-reads"])
@pytest.mark.parametrize("path", ["/v2/models/m/infer", "/v1/models/m/versions"])
def test_a_transfer_coding_nothing_decodes_is_a_501_whatever_the_body(srv, coding, chunks,
                                                                      path):
    # gunicorn passes "gzip, chunked" through undecoded: the same bytes were a 200 or a 400
    # ("ended before its last chunk") depending on how many reads brought them
    body = b"".join(b"%x\r\n%s\r\n" % (4096, b"x" * 4096) for _ in range(chunks))
    status, head, payload = raw(srv, (f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                                      f"Transfer-Encoding: {coding}\r\n\r\n").encode()
                                + body + b"0\r\n\r\n")
    assert status == 501, payload[:300]
    detail = json.loads(payload)["error" if path.startswith("/v2") else "detail"]
    assert detail.startswith(f"Transfer-Encoding '{coding}' is not supported"), detail


def test_an_unknown_transfer_coding_is_gunicorns_501_named_as_one(srv):
    # gunicorn refuses it 501 but named it "Bad Request": status line, type and title
    status, head, payload = raw(srv, b"POST /v1/models/m/predict HTTP/1.1\r\nHost: x\r\n"
                                     b"Transfer-Encoding: x-foo, chunked\r\n\r\n0\r\n\r\n")
    assert status == 501 and head.startswith("HTTP/1.1 501 Not Implemented"), head
    problem = json.loads(payload)
    assert (problem["type"], problem["title"]) == ("/problems/not-implemented", "Not Implemented")
