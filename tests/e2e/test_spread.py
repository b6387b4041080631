"""Kept-alive connections spread evenly over real gunicorn workers (connection_shares.py)."""

import http.client
import os
import signal
import socket
import threading
import time
from collections import Counter

import pytest

pytestmark = pytest.mark.e2e

WORKERS, CLIENTS, SECONDS = 4, 16, 4.0


def _client_ports_by_pid(pids, port):
    """Return {pid: the client ports of the established TCP connections it holds on the
    local port}, from /proc."""
    established = {}  # the socket's inode -> the client's port
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                established[fields[9]] = int(fields[2].split(":")[1], 16)
    held = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:[") and target[8:-1] in established:
                held.setdefault(pid, set()).add(established[target[8:-1]])
    return held


def _connections_by_pid(pids, port):
    """Return {pid: established TCP connections it holds on the local port}."""
    return Counter({pid: len(ports) for pid, ports in _client_ports_by_pid(pids, port).items()})


def _client(port, deadline, answers):
    """Ask for /healthz on one kept-alive connection (reopened when told to close) till
    deadline; record each answer's status and Connection header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.monotonic() < deadline:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        answers.append((r.status, r.getheader("Connection")))
    return conn


def _until_each_answers(srv, pids, timeout=30):
    """Return once each of pids (new workers) has answered a request: booted, its loop
    turning. Connections are held while asking, so the workers' shares send the next to
    one holding fewer (closed ones would all go where the kernel puts them)."""
    seen, held, deadline = set(), [], time.monotonic() + timeout
    try:
        while not pids <= seen:
            assert time.monotonic() < deadline, f"workers {pids - seen} never answered"
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            seen |= set(srv.pids_of([r.getheader("X-Request-ID")]).values())
            held.append(conn)
            if len(held) >= 8:  # a worker still booting: start again from none held
                for conn in held:
                    conn.close()
                held.clear()
                time.sleep(0.2)
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.3)  # the workers see the closes and count the connections out


def _clients(srv, count, seconds):
    """Run count clients for seconds; return their answers and {pid: connections} held at
    the end (then closed)."""
    deadline, answers, conns = time.monotonic() + seconds, [], []
    threads = [threading.Thread(target=lambda: conns.append(_client(srv.port, deadline, answers)))
               for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    held = _connections_by_pid(srv.worker_pids(), srv.port)  # the clients' still open
    for conn in conns:
        conn.close()
    assert len(conns) == count
    return answers, held


def test_sixteen_clients_end_four_on_each_of_four_workers(start_server):
    srv = start_server(workers=WORKERS)
    answers, held = _clients(srv, CLIENTS, SECONDS)
    assert len(answers) > 10 * CLIENTS
    assert {status for status, _ in answers} == {200}
    assert sorted(held.values()) == [CLIENTS // WORKERS] * WORKERS, held
    closed = sum(header == "close" for _, header in answers)
    assert closed < len(answers) / 20  # the spreading closes a few, then none


def test_with_spreading_off_the_answers_keep_every_connection(start_server):
    srv = start_server(workers=2, NNSERVE_SPREAD_CONNECTIONS="false")
    answers = []
    _client(srv.port, time.monotonic() + 1.0, answers).close()
    assert answers and all(status == 200 and header == "keep-alive"
                           for status, header in answers)


def test_a_worker_forked_in_place_of_a_killed_one_takes_its_share(start_server):
    """The master gives the new worker a free slot (gunicorn_conf.pre_fork): 8 clients on
    2 workers end 4 and 4 after each of 3 kills (were the new one without a slot, nothing
    would move them from where the kernel put them)."""
    srv = start_server(workers=2)
    for _ in range(3):
        victim = min(srv.worker_pids())
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in srv.worker_pids() or len(srv.worker_pids()) < 2:
            assert time.monotonic() < deadline, "no worker forked in place of the killed one"
            time.sleep(0.1)
        _until_each_answers(srv, srv.worker_pids() - {victim})  # booted, its slot taken
        answers, held = _clients(srv, 8, 2.0)
        assert sorted(held.values()) == [4, 4], held
        assert {status for status, _ in answers} == {200}


def test_a_reload_leaves_no_new_connection_waiting_for_the_old_workers(start_server):
    """SIGHUP: the old workers stop accepting and drain (one holds an unfinished upload for
    the read timeout). Were a draining worker's slot still counted, its few connections
    would lower the share: the new workers would see themselves over it, close kept-alive
    connections and refuse new ones until the old one was gone."""
    srv = start_server(workers=2)
    slow = socket.create_connection(("127.0.0.1", srv.port))
    slow.sendall(b"POST /v1/models/m/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: 1000\r\n\r\n{\"po")
    old = srv.worker_pids()
    os.kill(srv.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while len(srv.worker_pids() - old) < 2:
        assert time.monotonic() < deadline, "no new workers after SIGHUP"
        time.sleep(0.1)
    _until_each_answers(srv, srv.worker_pids() - old)  # the new workers have booted
    held, took, kept = [], [], []
    try:
        for _ in range(10):  # kept alive on the new workers, then one more, new each time
            asked = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            assert r.read()
            took.append(time.monotonic() - asked)
            kept.append(r.getheader("Connection"))
            held.append(conn)
        assert srv.worker_pids() & old, "the draining worker ended before the check"
        assert max(took) < 2.0, took
        assert kept.count("close") <= 3, kept  # a few while the two even out
    finally:
        slow.close()
        for conn in held:
            conn.close()


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _answers(sock):
    """Return what the server sent on sock until it closed it (or 5 s passed)."""
    sock.settimeout(5)
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except TimeoutError:
        pass
    return received


def test_a_crowded_worker_answers_every_pipelined_request_before_it_closes(start_server):
    """Two workers, six connections (three each); the three on one worker close. The other
    then holds more than its share and closes a connection after an answer, except while
    its client has sent more requests: closing then would drop them unanswered."""
    srv = start_server(workers=2)
    deadline = time.monotonic() + 20
    while True:  # until both workers have booted and count: then the six spread 3 and 3
        socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(6)]
        for sock in socks:  # each connection held by a worker, kept alive
            sock.sendall(HEALTHZ)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        held = _client_ports_by_pid(srv.worker_pids(), srv.port)
        if sorted(len(ports) for ports in held.values()) == [3, 3]:
            break
        assert time.monotonic() < deadline, held
        for sock in socks:
            sock.close()
        time.sleep(0.5)
    by_port = {sock.getsockname()[1]: sock for sock in socks}
    stays, leaves = held.values()
    for port in leaves:
        by_port[port].close()
    time.sleep(0.5)  # the other worker sees them closed, and records it
    first, second, third = (by_port[port] for port in stays)
    try:
        first.sendall(HEALTHZ)  # alone: the worker is crowded and closes it after the answer
        alone = _answers(first)
        assert alone.count(b"HTTP/1.1 200") == 1 and b"Connection: close" in alone, alone
        second.sendall(HEALTHZ * 3)  # pipelined: each answered, the last one closing
        piped = _answers(second)
        assert piped.count(b"HTTP/1.1 200") == 3, piped
        assert piped.count(b"Connection: close") == 1, piped
        assert piped.rindex(b"Connection: close") > piped.rindex(b"HTTP/1.1 200"), piped
    finally:
        for sock in (first, second, third):
            sock.close()
