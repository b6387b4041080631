"""gunicorn's gthread worker, except that a request is read in full before a thread takes it.

Stock gthread gives a connection a thread as soon as it is accepted, and that thread then
waits for the client: a few clients that send their request slowly (or not at all) hold
every thread, and /healthz stops answering. Here the worker's event loop reads each
request without a thread, into a spool (in memory while the worker holds less than
MEMORY_BUDGET bytes of unfinished requests, else a temporary file), and hands it to the
thread pool only once it is complete (request_scan.py says when). gunicorn's parser then
reads the spool, never the socket, so a thread never waits for a client. A request not
complete within `read_timeout` seconds (of connecting, or on a kept-alive connection of
its first byte) is answered 408 and its connection closed; a new connection that sent
nothing in that time is closed without an answer. Closing a connection (lingering to read
what the client still sends, so that it sees the answer) is done in the loop too, where
gunicorn would block the loop for up to 2 s.

TLS, HTTP/2 and PROXY-protocol connections are served as stock gthread serves them.
"""

import errno
import json
import selectors
import socket
import tempfile
import time
import uuid
import weakref
from collections import deque
from functools import partial

from gunicorn import http
from gunicorn.http.unreader import Unreader
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from .errors import PROBLEM, problem_body
from .request_scan import RequestScan, undecoded_detail
from .settings import Settings

MEMORY_BUDGET = 64 << 20  # bytes of unfinished requests a worker keeps in memory
RECV_SIZE = 64 * 1024
LINGER_S, LINGER_BYTES = 2.0, 64 * 1024  # gunicorn's util.close_graceful bounds
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# How soon a worker not accepting for the others' sake asks again whether it should: at
# once in a burst of connections (the others catch up within a few ms), then less often
# while the answer stays no (a worker one connection over the others may stay so).
SHARE_RECHECK_S = (0.001, 0.05)  # the first wait, the longest (each twice the last)


# The sockets whose request in hand names a /v2 target: a refusal the worker or gunicorn
# makes for it is the protocol's {"error": ...}, not problem+json (gunicorn's write_error
# is given the socket only).
V2_SOCKETS = weakref.WeakKeyDictionary()
HEAD_KEPT = 256  # bytes of a request's start kept to tell its target


def problem_response(status, reason, detail, v2=False):
    """Return a whole HTTP/1.1 refusal that closes the connection: problem+json, or the
    Open Inference Protocol's {"error": detail} for a /v2 request; with a new request id."""
    if v2:
        body, kind = json.dumps({"error": detail}).encode(), "application/json"
    else:
        body, kind = json.dumps(problem_body(status, reason, detail)).encode(), PROBLEM
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {kind}\r\nX-Content-Type-Options: nosniff\r\n"
            f"Cache-Control: no-store\r\nX-Request-ID: {uuid.uuid4().hex}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def names_v2(start):
    """Return whether a request's first bytes name a /v2 target."""
    line = start.lstrip(b"\r\n").split(b"\r\n", 1)[0].split(b" ")
    return len(line) > 1 and (line[1] == b"/v2" or line[1].startswith((b"/v2/", b"/v2?")))


class Spool:
    """A request's bytes as received: in memory, or once rolled over in a temporary file."""

    def __init__(self):
        self.chunks, self.file = deque(), None

    def write(self, data):
        if self.file is None:
            self.chunks.append(data)
        else:
            self.file.write(data)

    def rollover(self):
        self.file = tempfile.TemporaryFile()
        self.file.writelines(self.chunks)
        self.chunks.clear()

    def rewind(self):
        if self.file is not None:
            self.file.seek(0)

    def read(self, size):
        """Return the next bytes (at most size from the file; a whole chunk from memory)."""
        if self.file is not None:
            return self.file.read(size)
        return self.chunks.popleft() if self.chunks else b""

    def close(self):
        self.chunks.clear()
        if self.file is not None:
            self.file.close()


class SpoolUnreader(Unreader):
    """gunicorn's parser reads a request from the spool the loop filled; past it, the
    end of the data (so a thread never blocks on the socket)."""

    def __init__(self):
        super().__init__()
        self.spool = None

    def load(self, spool):
        spool.rewind()
        self.spool = spool

    def chunk(self, size_hint=None):
        if self.spool is None:
            return b""
        data = self.spool.read(max(size_hint or 0, RECV_SIZE))
        if not data:
            self.release()
        return data

    def keep_rest(self):
        """Keep what the spool still holds (a pipelined request) in the parser's buffer."""
        if self.spool is not None:
            self.buf.seek(0, 2)
            while data := self.spool.read(RECV_SIZE):
                self.buf.write(data)
            self.release()

    def release(self):
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class Conn(TConn):
    """A connection whose graceful close lingers in the worker's loop, not in a sleep."""

    def __init__(self, cfg, sock, client, server, linger):
        super().__init__(cfg, sock, client, server)
        self.linger = linger
        self.spooled = False  # its requests are read by the loop (not TLS, not HTTP/2)
        self.whole = True  # the request handed over was complete (else: close after it)
        self.continued = False  # the loop sent "100 Continue" for this request
        self.ahead = False  # the client sent bytes past the request (a pipelined one)

    def close(self, graceful=False):
        if graceful:
            self.linger(self.sock)
        else:
            super().close()


class Reading:
    """A request being read by the loop: its bytes so far, its scan and its deadline."""

    def __init__(self, conn, scan, deadline):
        self.conn, self.scan, self.deadline = conn, scan, deadline
        self.spool = Spool()
        self.received, self.start = 0, b""  # start: its first HEAD_KEPT bytes
        self.in_memory = True


class BufferingWorker(ThreadWorker):
    """gthread that reads whole requests in its loop (see the module docstring)."""

    # The configuration (gunicorn_conf.py) sets these from the settings; their defaults:
    read_timeout = Settings.model_fields["read_timeout_s"].default
    max_body = Settings.model_fields["max_body_bytes"].default
    shares = None  # a ConnectionShares: spread kept-alive connections evenly (None: never)
    slot = None  # this worker's slot in shares, given by the master (None: none was free)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading = {}  # socket -> Reading, oldest first
        self.lingering = {}  # socket -> when it is closed at the latest, oldest first
        self.in_memory = 0  # bytes of the readings whose spool is still in memory
        stock = self.cfg.is_ssl or self.cfg.proxy_protocol != "off"  # served as gthread does
        self.max_head = None if stock else max_head(self.cfg)
        self._recheck_s = 0.0  # the last wait while not accepting for the others' sake

    def accept(self, listener):
        """Accept a connection as gthread does, as a Conn; leave it to the others while they
        hold fewer connections (ConnectionShares.accepts)."""
        if not self._accepts():
            self.set_accept_enabled(False)  # until the loop's next turn asks again
            return
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Conn(self.cfg, sock, client, listener.getsockname(), self.linger)
        conn.spooled = self.max_head is not None \
            and not negotiation.prior_knowledge_allowed(self.cfg, client)
        self.enqueue_req(conn)

    def enqueue_req(self, conn):
        """Read conn's next request in the loop; the thread pool gets it once complete."""
        if not conn.spooled or conn.is_http2:
            return super().enqueue_req(conn)
        scan = RequestScan(self.max_head, self.max_body)
        reading = Reading(conn, scan, time.monotonic() + self.read_timeout)
        conn.sock.setblocking(False)
        if conn.parser is not None:  # bytes read ahead: the start of a pipelined request
            self._take(reading, conn.parser.unreader.take_buffered())
        # The request is often there already: read it before asking the poller.
        if not scan.done and not self._receive(reading):
            return self._drop(reading)
        if scan.done:
            return self._hand_over(reading)
        self.reading[conn.sock] = reading
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, reading))

    def _on_bytes(self, reading, sock):
        if not self._receive(reading):
            self._unwatch(reading)
            self._drop(reading)
        elif reading.scan.done:
            self._unwatch(reading)
            self._hand_over(reading)

    def _refuse(self, reading, status, reason, detail):
        """Answer reading's request with a refusal here (no thread sees it), then close."""
        self._forget(reading)
        reading.spool.close()
        self.nr_conns -= 1
        _send_quietly(reading.conn.sock, problem_response(status, reason, detail,
                                                          v2=names_v2(reading.start)))
        self.linger(reading.conn.sock)

    def _receive(self, reading):
        """Take what the client has sent (nothing, if it has not); return False if it left
        without a byte of a request. A client that half-closes with part of a request sent
        has it handed over as it is: gunicorn or the app answers it ("the body ended after
        ... bytes"), as they answered a body cut short before."""
        try:
            data = reading.conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:  # reset: nobody is left to answer
            return False
        if not data:
            if not reading.received:
                return False
            reading.scan.end()
        self._take(reading, data)
        return True

    def _take(self, reading, data):
        if data:
            if reading.received < HEAD_KEPT:
                reading.start += data[:HEAD_KEPT - reading.received]
            reading.received += len(data)
            reading.spool.write(data)
            reading.scan.feed(data)
            if reading.in_memory:
                self.in_memory += len(data)
                if self.in_memory > MEMORY_BUDGET:  # slow uploads: the rest goes to disk
                    reading.spool.rollover()
                    self._forget(reading)
        if reading.scan.expects_continue and not reading.conn.continued:
            reading.conn.continued = True
            _send_quietly(reading.conn.sock, CONTINUE)

    def _forget(self, reading):
        """Stop counting reading's bytes against the worker's memory budget."""
        if reading.in_memory:
            self.in_memory -= reading.received
            reading.in_memory = False

    def _hand_over(self, reading):
        if reading.scan.over_limit:  # as the app's 413 says it, before the rest is read
            return self._refuse(reading, 413, "Request Entity Too Large",
                                f"request body over the limit of {self.max_body} bytes "
                                "(NNSERVE_MAX_BODY_BYTES)")
        if reading.scan.undecoded:
            return self._refuse(reading, 501, "Not Implemented",
                                undecoded_detail(reading.scan.undecoded.decode("latin-1")))
        self._forget(reading)  # a thread holds it now, as stock gthread's would
        conn = reading.conn
        V2_SOCKETS[conn.sock] = names_v2(reading.start)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader = SpoolUnreader()
        conn.parser.unreader.load(reading.spool)
        conn.whole, conn.ahead = reading.scan.whole, reading.scan.ahead
        conn.data_ready = True  # gthread would otherwise wait for the socket to be readable
        super().enqueue_req(conn)

    def handle(self, conn):
        """Serve the request (in a thread); keep the connection only after a whole one."""
        keep = super().handle(conn)
        if isinstance(getattr(conn.parser, "unreader", None), SpoolUnreader):
            if keep and conn.whole:
                conn.parser.unreader.keep_rest()
            else:
                conn.parser.unreader.release()
                keep = False
            conn.continued = False
        return keep

    def notify(self):
        """Tell the arbiter the worker is alive (each turn of the loop), and the other workers
        how many connections it holds."""
        super().notify()
        if self._accepting and not self._accepts():
            self.set_accept_enabled(False)

    def set_accept_enabled(self, enabled):
        """Accept as gthread would, except while the others hold fewer connections (the
        loop asks again each turn while that lasts)."""
        if enabled and not self._accepts():
            enabled = False
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout):
        """Wait as gthread does, but only SHARE_RECHECK_S while not accepting for the others'
        sake: its share grows as theirs do, which it learns only by asking."""
        if self.shares is not None and not self._accepting and self.alive:
            first, longest = SHARE_RECHECK_S
            self._recheck_s = min(2 * self._recheck_s, longest) if self._recheck_s else first
            timeout = min(timeout, self._recheck_s)
        else:
            self._recheck_s = 0.0
        super().wait_for_and_dispatch_events(timeout)

    def _crowded(self):
        """Return whether this worker holds more than its even share of the connections."""
        shares = self._spreading()
        return shares is not None and shares.crowded(self.slot, self.nr_conns)

    def _accepts(self):
        """Return whether this worker should accept connections (as gthread always would)."""
        shares = self._spreading()
        return shares is None or shares.accepts(self.slot, self.nr_conns)

    def _spreading(self):
        """Return the ConnectionShares, or None when not spreading: a stopping worker (its
        listeners closed) empties its slot, so that the others do not count on it, and a
        worker without a slot serves as stock gthread does."""
        if self.shares is None or self.slot is None:
            return None
        if not self.alive:
            self.shares.clear(self.slot)
            return None
        return self.shares

    def handle_request(self, req, conn):
        if self._crowded() and not self._pipelining(conn):
            req.must_close = True  # "Connection: close": the client reconnects elsewhere
        if isinstance(conn.parser.unreader, SpoolUnreader):
            # The loop answered Expect: 100-continue if the body was awaited; otherwise it
            # is here already, or over the limit and refused without being sent.
            req._expected_100_continue = False
        return super().handle_request(req, conn)

    def _pipelining(self, conn):
        """Return whether conn's client has sent more than this request: closing after the
        answer would drop the requests it pipelined (which it may not safely resend)."""
        if conn.ahead:
            return True
        try:
            return bool(conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except (OSError, ValueError):  # nothing waiting (EAGAIN), gone, or TLS (no peek)
            return False

    def murder_pending(self):
        """gthread's sweep of expired connections, and of requests past the read timeout."""
        super().murder_pending()
        now = time.monotonic()
        for reading in [r for r in self.reading.values() if r.deadline <= now]:
            self._unwatch(reading)
            self._drop(reading, timed_out=True)
        for sock in [s for s, until in self.lingering.items() if until <= now]:
            self._close_lingering(sock)

    def _cap_keepalive(self, deadline):
        """A stopping worker closes kept-alive connections soon, and idle new ones too."""
        super()._cap_keepalive(deadline)
        for reading in self.reading.values():
            if not reading.received:
                reading.deadline = min(reading.deadline, deadline)

    def _drop(self, reading, timed_out=False):
        if timed_out and reading.received:
            return self._refuse(reading, 408, "Request Timeout",
                                f"the request was not complete within {self.read_timeout:g} s"
                                " (NNSERVE_READ_TIMEOUT_S)")
        self._forget(reading)
        reading.spool.close()
        self.nr_conns -= 1
        reading.conn.close()

    def _unwatch(self, reading):
        del self.reading[reading.conn.sock]
        self.poller.unregister(reading.conn.sock)

    def linger(self, sock):
        """Close sock once the client has read the answer: half-close it, then discard
        what the client still sends, for LINGER_S or LINGER_BYTES at most."""
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.lingering[sock] = time.monotonic() + LINGER_S
        self.poller.register(sock, selectors.EVENT_READ, partial(self._discard, [0]))

    def _discard(self, drained, sock):
        try:
            data = sock.recv(LINGER_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        drained[0] += len(data)
        if not data or drained[0] >= LINGER_BYTES:
            self._close_lingering(sock)

    def _close_lingering(self, sock):
        del self.lingering[sock]
        self.poller.unregister(sock)
        sock.close()


def max_head(cfg):
    """Return the most bytes gunicorn reads for a request head (request line, fields)."""
    line = cfg.limit_request_line if cfg.limit_request_line > 0 else 1 << 20
    fields = cfg.limit_request_fields if 0 < cfg.limit_request_fields <= 32768 else 32768
    size = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else 8190
    return line + 2 + fields * (size + 2) + 4


def _send_quietly(sock, data):
    """Send a short answer without blocking the loop (a socket's buffer holds it)."""
    try:
        sock.send(data)
    except OSError:
        pass
