"""gunicorn's configuration: `gunicorn -c python:service.gunicorn_conf 'service:create_app()'`.

Environment: HOST, PORT, WEB_CONCURRENCY (workers), GUNICORN_THREADS,
GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, PROMETHEUS_MULTIPROC_DIR.
"""

import gc
import json
import os
import shutil
import signal
import tempfile
from http import HTTPStatus

from gunicorn import glogging, util

from service.connection_shares import ConnectionShares
from service.gunicorn_worker import V2_SOCKETS, BufferingWorker, problem_response
from service.settings import SettingsError, read_settings
from service.timestamps import utc_iso

try:  # a bad NNSERVE_* value stops start-up with one line naming it, not a traceback
    SETTINGS = read_settings()
except SettingsError as exc:
    raise SystemExit(f"nnserve: {exc}") from None


workers = int(os.environ.get("WEB_CONCURRENCY", max(2, 2 * (os.cpu_count() or 1))))


class Worker(BufferingWorker):
    """gthread that reads whole requests before a thread takes them (gunicorn_worker.py),
    and whose stopping workers close their listening sockets at once.

    gthread closes them only after its last in-flight request, and until every process
    has closed them the kernel keeps accepting connections nobody will answer: on SIGTERM,
    new clients would hang for up to the graceful timeout instead of being refused."""

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()

    read_timeout = SETTINGS.read_timeout_s
    max_body = SETTINGS.max_body_bytes
    # Room for twice the configured workers (a reload runs old and new side by side); a
    # worker forked when none is free (TTIN past that) serves without spreading.
    shares = ConnectionShares(max(64, 2 * workers)) if SETTINGS.spread_connections else None


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = Worker
# Each event stream holds a thread while it is open: the streams get threads of their own
# (NNSERVE_MAX_STREAMS) on top of those normal requests need.
threads = int(os.environ.get("GUNICORN_THREADS", "4")) + SETTINGS.max_streams
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "90"))  # > the longest ?wait (60 s)
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = "-"
errorlog = "-"

# prometheus-client's multiprocess mode: every worker writes its samples here. It must be
# set before a worker imports prometheus_client, so it is set while this file loads.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
METRICS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nnserve-metrics-")
)


class JsonAccessLogger(glogging.Logger):
    """One JSON object per request, carrying the request id (and never any header value)."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        headers = {k.lower(): v for k, v in resp.headers}
        status = str(resp.status).split(None, 1)[0]
        record = {
            "time": utc_iso(),
            "request_id": headers.get("x-request-id"),
            "remote": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "pid": os.getpid(),
        }
        self.access_log.info(json.dumps(record))


logger_class = JsonAccessLogger


def problem_error(sock, status, reason, detail):
    """Write a refusal gunicorn makes itself (request line or headers too long, bad HTTP)
    as the same problem+json every other error is (on /v2, the protocol's error), instead
    of gunicorn's HTML page."""
    try:  # gunicorn names its 501 (an unknown transfer coding) "Bad Request"
        reason = HTTPStatus(int(status)).phrase
    except ValueError:
        pass
    util.write_nonblock(sock, problem_response(status, reason, detail,
                                               v2=V2_SOCKETS.get(sock, False)))


util.write_error = problem_error  # the workers' handle_error calls util.write_error


def on_starting(server):
    """Start from an empty metrics directory; create the job database (before the workers
    would race to) and fail the jobs a previous run left running."""
    os.makedirs(METRICS_DIR, exist_ok=True)
    for entry in os.scandir(METRICS_DIR):  # only prometheus-client's own files
        if entry.name.endswith(".db") and entry.is_file():
            os.unlink(entry.path)
    from service.backends import prepare

    prepare(SETTINGS)


def worker_exit(server, worker):
    """Stop the worker's job runner: a job it was running fails as interrupted, not lost."""
    app = getattr(worker, "wsgi", None)
    service = getattr(app, "extensions", {}).get("nnserve")
    if service is not None:
        service.stop()


def child_exit(server, worker):
    """Tell prometheus-client the worker is gone (its live gauges stop counting), and the
    other workers that its connections are."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    if Worker.shares is not None and worker.slot is not None:
        Worker.shares.clear(worker.slot)


def pre_fork(server, worker):
    """Give the worker about to be forked a slot of the connection shares no live worker
    holds (the master alone hands them out, so two never share one)."""
    if Worker.shares is not None:
        worker.slot = Worker.shares.free({w.slot for w in server.WORKERS.values()})


def on_exit(server):
    """Remove the metrics directory this configuration made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)

# gunicorn 25+ opens a control socket under $HOME by default; nnserve has no use for it,
# and several servers on one machine would contend for the one path.
control_socket_disable = True
GC_YOUNG = 50_000  # allocations between collections of the youngest generation (default 700)


def post_worker_init(worker):
    """Freeze what the loaded app holds out of the garbage collector's way, and collect
    the youngest generation every 50,000 allocations rather than 700."""
    # A 100,000-point /v1 request builds some 300,000 containers; at the default threshold
    # the collector rescans them hundreds of times (benchmarks/RESULTS.md, "Garbage collector")
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)
    _drain_on_sigterm(worker)


def _drain_on_sigterm(worker):
    """On SIGTERM, end the worker's event streams at once and claim no more jobs
    (Service.drain), then stop it as gunicorn does: an open stream would otherwise hold its
    thread through the whole graceful timeout, and a job claimed while the worker drains
    would fail "interrupted by shutdown" though other workers are there to run it."""
    service = getattr(worker.wsgi, "extensions", {}).get("nnserve")
    stop = signal.getsignal(signal.SIGTERM)
    if service is None or not callable(stop):
        return

    def on_sigterm(sig, frame):
        service.drain()
        stop(sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
