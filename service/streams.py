"""Server-Sent Events of training jobs: the framing, the per-process limit, the stream loop.

A stream reads the job backend, so it follows a job whichever worker (or host) runs it,
and it reads no faster than a runner writes progress (jobs.runner.WRITE_INTERVAL_S). It
reads the job's summary (JobBackend.summary): neither the request, which holds the data
set, nor the history, nor the weights' snapshot, so a read costs the same for any job.
"""

import json
import math
import socket
import threading
import time

from .errors import InvalidInput, JobNotFound, StoreUnavailable, TooManyStreams
from .jobs.backend import TERMINAL
from .jobs.runner import WRITE_INTERVAL_S

RETRY_MS = 2000  # how long an EventSource waits before it reconnects after a close
END_FIELDS = ("status", "progress", "result", "error")


def frame(event=None, data=None, event_id=None):
    """Return one SSE message: id, event and data lines (data as compact JSON), then a blank."""
    lines = [] if event_id is None else [f"id: {event_id}"]
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.append("data: " + json.dumps(data, separators=(",", ":"), allow_nan=False))
    return "\n".join(lines) + "\n\n"


def comment(text):
    """Return an SSE comment line (ignored by clients; keeps proxies from closing the stream)."""
    return f": {text}\n\n"


def last_event_id(header):
    """Return the epoch a Last-Event-ID header names (0 when absent); 422 if it is no epoch."""
    if header is None or header == "":
        return 0
    if not (header.isascii() and header.isdecimal()) or len(header) > 12:
        raise InvalidInput("Last-Event-ID must be the id of an event this stream sent "
                           "(a whole number)", field=("header", "Last-Event-ID"))
    return int(header)


OPEN, HALF_CLOSED, GONE = "open", "half-closed", "gone"  # what peer() says of a client
HALF_CLOSED_PROBE_S = 1.0  # how often a half-closed client is written to, to tell if it left


def peer(sock):
    """Return what is known of the client at the other end of sock without waiting or
    consuming (a peek): GONE once its connection is reset (a write to a closed one is
    answered so), HALF_CLOSED at end of file (it closed, or only shut its sending side
    and still reads: only a write tells), else OPEN."""
    try:
        return HALF_CLOSED if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"" \
            else OPEN
    except (BlockingIOError, InterruptedError, ValueError):  # ValueError: TLS takes no flags
        return OPEN
    except OSError:
        return GONE


def always_open():
    return OPEN


class Streams:
    """The open event streams of this process: at most max_open, all ended by close_all()."""

    def __init__(self, jobs, *, max_open, keepalive_s, poll_s=WRITE_INTERVAL_S):
        self.jobs, self.max_open = jobs, max_open
        self.keepalive_s, self.poll_s = keepalive_s, poll_s
        self._lock, self._open = threading.Lock(), 0
        self.stopping = threading.Event()

    def open(self, job_id, after=0, peer=always_open):
        """Return the events of a job after epoch `after` (404 for no such job, 503 past
        max_open); an iterable of str to answer as it is, whose close() frees its place.
        peer() says what is known of the client (OPEN, HALF_CLOSED, GONE): the stream ends
        at its next tick once the client is gone, rather than at its next failed write (a
        keep-alive's, up to keepalive_s later)."""
        job = self.jobs.summary(job_id)
        with self._lock:
            if self._open >= self.max_open or self.stopping.is_set():
                raise TooManyStreams(self.max_open, retry_after=max(1, round(self.keepalive_s)))
            self._open += 1
        return _Stream(self, job, after, peer)

    def count(self):
        """Return how many streams are open in this process."""
        return self._open

    def close_all(self):
        """End every open stream at its next tick, and refuse new ones (shutdown)."""
        self.stopping.set()

    def _release(self):
        with self._lock:
            self._open -= 1

    def events(self, job, after, peer=always_open):
        """Yield the frames of a job: progress past epoch `after`, keep-alives, then end (or
        nothing more once peer() is GONE). A half-closed client gets a keep-alive every
        HALF_CLOSED_PROBE_S: one that closed answers it with a reset, one still reading
        reads it."""
        yield f"retry: {RETRY_MS}\n\n"
        quiet_since, half_closed = time.monotonic(), False
        while True:
            progress = job["progress"]
            if progress["epoch"] > after:
                after = progress["epoch"]
                yield frame("progress", progress, after)
                quiet_since = time.monotonic()
            if job["status"] in TERMINAL:
                yield frame("end", {key: job[key] for key in END_FIELDS})
                return
            interval = min(self.keepalive_s, HALF_CLOSED_PROBE_S) if half_closed \
                else self.keepalive_s
            if time.monotonic() - quiet_since >= interval:
                yield comment("keep-alive")
                quiet_since = time.monotonic()
            if self.stopping.wait(self.poll_s):
                return  # shutting down: the client reconnects elsewhere with Last-Event-ID
            state = peer()
            if state == GONE:
                return  # its place is free for another client now
            if state == HALF_CLOSED and not half_closed:
                quiet_since = -math.inf  # probe at once, then every HALF_CLOSED_PROBE_S
            half_closed = state == HALF_CLOSED
            try:
                job = self.jobs.summary(job["id"])
            except StoreUnavailable:  # the database is away: keep-alives go on, the next
                continue  # poll reads again (the answer was cut short mid-stream, unended)
            except JobNotFound:  # deleted meanwhile (past its retention)
                return


class _Stream:
    """One open stream: iterates its events; close() (called by the server) frees its place."""

    def __init__(self, streams, job, after, peer):
        self._streams, self._closed = streams, False
        self._events = streams.events(job, after, peer)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._events)

    def close(self):
        if not self._closed:
            self._closed = True
            self._events.close()
            self._streams._release()
