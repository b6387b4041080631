"""Slow and idle clients against real gunicorn with 2 workers: they hold no thread, so
/healthz and a prediction keep answering within a second, and a request not complete
within NNSERVE_READ_TIMEOUT_S is cut with a 408 problem (an idle connection is closed)."""

import json
import select
import socket
import threading
import time

import pytest
import requests

from .server import Server

pytestmark = pytest.mark.e2e
READ_TIMEOUT = 2.0
PREDICT = "/v1/models/xor-demo/predict"
BODY = b'{"x1": 0.0, "x2": 1.0}'
TRICKLERS, IDLE, KEPT_ALIVE = 50, 20, 5


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("slow") / "store", workers=2,
                    NNSERVE_READ_TIMEOUT_S=READ_TIMEOUT).start()
    r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30},
                      json={"model": "xor-demo", "dataset": {"kind": "xor"}}, timeout=40)
    assert r.json()["status"] == "succeeded", r.text
    yield server
    server.stop()


def connect(srv):
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def head(path=PREDICT, *extra):
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock, timeout=5):
    """Return what the server sends until it closes (or timeout passes)."""
    sock.settimeout(timeout)
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def one_response(sock):
    """Return one whole response of a kept-alive connection (its head and its body)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(head.lower().partition(b"content-length:")[2].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return answer


def trickle(socks, answers, stop):
    """Send one byte on each socket every 0.5 s; collect a socket's answer once it has one."""
    while socks and not stop.is_set():
        for s in list(socks):
            if select.select([s], [], [], 0)[0]:
                answers[s] = (time.monotonic(), read_answer(s))
                socks.remove(s)
                continue
            try:
                s.sendall(b"{")
            except OSError:  # cut meanwhile: the answer is read next round
                pass
        stop.wait(0.5)


def probe(srv):
    """Return the seconds /healthz and a 1-point prediction took, the longer (each must
    answer within a second)."""
    r = requests.get(f"{srv.url}/healthz", timeout=1)
    assert r.status_code == 200
    p = requests.post(srv.url + PREDICT, data=BODY, timeout=1,
                      headers={"Content-Type": "application/json"})
    assert p.status_code == 200 and p.json()["predictions"][0]["label"] == 1, p.text
    return max(r.elapsed.total_seconds(), p.elapsed.total_seconds())


def test_tricklers_and_idle_sockets_hold_no_thread_and_are_cut_after_the_read_timeout(srv):
    socks, connected = [], {}
    for i in range(TRICKLERS):
        s = connect(srv)
        connected[s] = time.monotonic()  # its deadline runs from the accept, later
        if i < KEPT_ALIVE:  # a kept-alive connection's next request gets a deadline too
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert one_response(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(head(PREDICT, "Content-Length: 100"))
        socks.append(s)
    idle = [connect(srv) for _ in range(IDLE)]
    started, answers, stop = time.monotonic(), {}, threading.Event()
    sender = threading.Thread(target=trickle, args=(list(socks), answers, stop))
    sender.start()
    try:
        took = []
        while time.monotonic() - started < READ_TIMEOUT:  # every slow client still open
            took.append(probe(srv))
        sender.join(READ_TIMEOUT + 3)
        closed = [read_answer(s, timeout=1) for s in idle]  # no request: nothing to answer
    finally:
        stop.set()
        sender.join()
        for s in socks + idle:
            s.close()
    assert max(took) < 1, took
    assert len(answers) == TRICKLERS, f"{TRICKLERS - len(answers)} slow requests not cut"
    for s, (at, answer) in answers.items():
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 408 "), answer[:300]
        assert b"application/problem+json" in rest and b"connection: close" in rest.lower()
        detail = json.loads(rest.partition(b"\r\n\r\n")[2])["detail"]
        assert "NNSERVE_READ_TIMEOUT_S" in detail, detail
        assert READ_TIMEOUT <= at - connected[s] < READ_TIMEOUT + 3
    assert closed == [b""] * IDLE


def test_a_slow_request_within_the_timeout_is_served(srv):
    """A body sent in pieces, a chunked one, a pipelined pair and 100-continue all work; a
    body cut short and one over the limit get their 400 and 413."""
    with connect(srv) as s:  # Content-Length, in three pieces
        s.sendall(head(PREDICT, f"Content-Length: {len(BODY)}", "Connection: close"))
        for piece in (BODY[:5], BODY[5:12], BODY[12:]):
            time.sleep(0.2)
            s.sendall(piece)
        assert b'"label":1' in read_answer(s).replace(b" ", b"")
    with connect(srv) as s:  # chunked, a chunk split across sends
        s.sendall(head(PREDICT, "Transfer-Encoding: chunked", "Connection: close"))
        for piece in (b"%x\r\n%s" % (len(BODY), BODY[:9]), BODY[9:] + b"\r\n0\r", b"\n\r\n"):
            time.sleep(0.2)
            s.sendall(piece)
        assert read_answer(s).startswith(b"HTTP/1.1 200 ")
    with connect(srv) as s:  # two requests in one send: two answers
        s.sendall(head(PREDICT, f"Content-Length: {len(BODY)}") + BODY
                  + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 200 ") == 2
    with connect(srv) as s:  # Expect: 100-continue is answered before the body is sent
        s.sendall(head(PREDICT, f"Content-Length: {len(BODY)}", "Expect: 100-continue",
                       "Connection: close"))
        s.settimeout(1)
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(BODY)
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in answer
    with connect(srv) as s:  # a client that half-closes mid-body is told its body ended
        s.sendall(head(PREDICT, f"Content-Length: {len(BODY)}") + BODY[:5])
        s.shutdown(socket.SHUT_WR)
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 400 ") and b"the body ended after 5" in answer
    with connect(srv) as s:  # ... and a body over the limit is refused without being sent
        s.sendall(head(PREDICT, f"Content-Length: {10**9}", "Expect: 100-continue"))
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 413 ") and b"NNSERVE_MAX_BODY_BYTES" in answer
