"""Training jobs: states, claiming, progress, cancel. A SQLite backend and a runner thread.

A job is a plain dict (FIELDS). Its life: queued -> running -> succeeded | failed |
cancelled, and queued -> cancelled. Every gunicorn worker opens the same SQLite file
(WAL mode), so a job created in one worker is visible, waitable and cancellable from all
of them and survives restarts. Each process runs one JobRunner thread, which claims the
oldest queued job while fewer than max_running run across all processes.

A running job whose process died is failed with "worker lost": its worker id
"host:pid:start" names a process of this host that is gone (kill(pid, 0), and the start
time in /proc/<pid>/stat so a reused pid does not count), or its heartbeat is older than
stale_s (the only signal about other hosts). Lost jobs are reaped when get() or list()
returns a running job, before each claim, and by fail_interrupted() at start-up.
"""

import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import JobFinished, JobNotFound, ServiceError, StoreUnavailable

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
WORKER_LOST = "worker lost"
SHUTDOWN = "interrupted by shutdown"
INTERNAL = "internal error"
WRITE_INTERVAL_S = 0.25
_INHERITED = []  # connections a forked child got from its parent: kept open, never used

FIELDS = ("id", "model", "status", "request", "progress", "history", "result", "error",
          "created_at", "started_at", "finished_at", "worker", "heartbeat_at", "cancel_requested")
JSON_FIELDS = ("request", "progress", "history", "result")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order: claim order, created_at ties
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    progress TEXT NOT NULL,
    history TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    worker TEXT,
    heartbeat_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, seq);
"""


def utc_iso(t=None):
    """Return time t (default now) as fixed-width UTC ISO 8601, so strings sort as times."""
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def _finite(value):
    """Return value with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _dumps(value):
    """Return value as JSON text (NaN and infinities as null)."""
    return json.dumps(_finite(value))


def _job(row):
    """Return a job dict from a row of FIELDS."""
    job = dict(zip(FIELDS, row, strict=True))
    for key in JSON_FIELDS:
        job[key] = None if job[key] is None else json.loads(job[key])
    job["cancel_requested"] = bool(job["cancel_requested"])
    return job


def _proc_stat(pid):
    """Return the fields of /proc/<pid>/stat from field 3 (state) on, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # field 2, the command name, may hold spaces


def process_start(pid):
    """Return the start time of process pid (clock ticks since boot), or "0" where unknown."""
    fields = _proc_stat(pid)
    return fields[19] if fields else "0"  # field 22 of proc(5)


def worker_id():
    """Return this process's worker id, "host:pid:start"."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def worker_is_alive(worker):
    """Return False when worker names a process of this host that is gone (or a reused pid)."""
    parts = (worker or "").rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return True  # another host or a foreign id: only the heartbeat can tell
    pid, start = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return start == "0"  # no /proc on this system, else the process just ended
    return fields[0] not in ("Z", "X") and start in ("0", fields[19])


class JobBackend(ABC):
    """Where jobs live, shared by every process of the service (SQLite now, a queue later)."""

    @abstractmethod
    def create(self, model, request, epochs):
        """Return a new queued job training model with request (a JSON dict)."""

    @abstractmethod
    def get(self, job_id):
        """Return the job, or raise JobNotFound."""

    @abstractmethod
    def list(self, status=None, model=None, limit=50, offset=0):
        """Return (jobs, total): one page of the matching jobs, newest first, and their count."""

    @abstractmethod
    def claim(self, worker, max_running):
        """Return the oldest queued job, now running on worker, or None (none or no slot)."""

    @abstractmethod
    def report(self, job_id, progress, history):
        """Record a running job's progress; return True when it must stop (cancel, not ours)."""

    @abstractmethod
    def heartbeat(self, job_id):
        """Mark a running job's worker as alive now."""

    @abstractmethod
    def finish(self, job_id, status, result=None, error=None):
        """End a running (or, to cancel, queued) job; return False if it had already ended."""

    @abstractmethod
    def cancel(self, job_id):
        """Return the job after cancelling it (queued) or asking it to stop (running)."""

    @abstractmethod
    def reap(self, is_alive=None):
        """Fail the running jobs whose worker is gone with "worker lost"; return their ids."""

    @abstractmethod
    def counts(self):
        """Return {status: number of jobs} for every status."""

    @abstractmethod
    def ping(self):
        """Raise StoreUnavailable unless jobs can be read and written."""

    def fail_interrupted(self):
        """Fail the jobs left running by processes gone before a restart; return their ids."""
        return self.reap()

    def wait(self, job_id, timeout_s):
        """Return the job once it has ended, or as it stands after timeout_s seconds."""
        deadline, delay = time.monotonic() + timeout_s, 0.005
        while True:
            job = self.get(job_id)
            remaining = deadline - time.monotonic()
            if job["status"] in TERMINAL or remaining <= 0:
                return job
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.1)  # quick answers for short jobs, few reads for long ones


class SqliteJobs(JobBackend):
    """Jobs in one SQLite file (WAL), shared by all threads and processes that open it."""

    def __init__(self, path, *, stale_s=30.0, busy_timeout_s=5.0):
        self.path, self.stale_s, self.busy_timeout_s = Path(path), stale_s, busy_timeout_s
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("job database %s unavailable: %s", self.path, exc)
            raise StoreUnavailable(f"job database unavailable: {exc}") from exc
        with self._db() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
            conn.executescript(SCHEMA)

    def _conn(self):
        """Return this thread's connection, opening it on first use in this thread and process."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if hasattr(local, "conn"):  # a forked child must neither use nor close its parent's
                _INHERITED.append(local.conn)  # (SQLite's lock bookkeeping was copied with it)
            local.conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                         isolation_level=None)
            local.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
            local.pid = os.getpid()
        return local.conn

    @contextmanager
    def _db(self, begin=None):
        """Yield the connection, inside begin ... COMMIT if given; sqlite errors -> 503."""
        try:
            conn = self._conn()
            if begin is None:
                yield conn
                return
            conn.execute(begin)
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.rollback()
        except sqlite3.DatabaseError as exc:  # locked past busy_timeout, read-only, full, corrupt
            log.error("job database %s unavailable: %s", self.path, exc)
            raise StoreUnavailable(f"job database unavailable: {exc}") from exc

    def _select(self, conn, where, args=(), tail=""):
        """Return the jobs matching an SQL condition, in the order tail gives."""
        sql = f"SELECT {', '.join(FIELDS)} FROM jobs WHERE {where} {tail}"
        return [_job(row) for row in conn.execute(sql, args)]

    def create(self, model, request, epochs):
        """Return a new queued job training model with request (a JSON dict)."""
        job_id = uuid.uuid4().hex
        progress = {"epoch": 0, "epochs": epochs, "loss": None, "accuracy": None, "elapsed_s": 0.0}
        history = {"epoch": [], "loss": [], "accuracy": []}
        with self._db() as conn:
            conn.execute(
                "INSERT INTO jobs (id, model, status, request, progress, history, created_at)"
                " VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, model, *map(_dumps, (request, progress, history)), utc_iso()),
            )
        return self.get(job_id)

    def get(self, job_id):
        """Return the job, or raise JobNotFound."""
        job = self._get(job_id)
        if self._reap([job]):
            job = self._get(job_id)
        return job

    def _get(self, job_id):
        with self._db() as conn:
            jobs = self._select(conn, "id = ?", (job_id,))
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    def list(self, status=None, model=None, limit=50, offset=0):
        """Return (jobs, total): one page of the matching jobs, newest first, and their count."""
        page = self._page(status, model, limit, offset)
        if self._reap(page[0]):
            page = self._page(status, model, limit, offset)
        return page

    def _page(self, status, model, limit, offset):
        filters = [(sql, v) for sql, v in (("status = ?", status), ("model = ?", model)) if v]
        where = " AND ".join(sql for sql, _ in filters) or "1"
        args = [v for _, v in filters]
        with self._db("BEGIN") as conn:  # one snapshot for the page and its total
            total = conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", args).fetchone()[0]
            tail = "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
            jobs = self._select(conn, where, [*args, limit, offset], tail)
        return jobs, total

    def counts(self):
        """Return {status: number of jobs} for every status."""
        with self._db() as conn:
            rows = dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status"))
        return {status: rows.get(status, 0) for status in STATUSES}

    def claim(self, worker, max_running):
        """Return the oldest queued job, now running on worker, or None (none or no slot)."""
        with self._db() as conn:  # a cheap read first: most polls find nothing to do
            queued, running = conn.execute(
                "SELECT total(status = 'queued'), total(status = 'running') FROM jobs"
                " WHERE status IN ('queued', 'running')").fetchone()
        if not queued:
            return None
        if running >= max_running:
            self.reap()  # a dead worker's job must not hold one of the slots
        now = utc_iso()
        with self._db("BEGIN IMMEDIATE") as conn:  # count and claim under one write lock
            running = conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
            row = conn.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if running[0] >= max_running or row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?, worker = ?"
                " WHERE id = ?", (now, now, worker, row[0]))
            return self._select(conn, "id = ?", row)[0]

    def report(self, job_id, progress, history):
        """Record a running job's progress; return True when it must stop (cancel, not ours)."""
        with self._db() as conn:
            updated = conn.execute(
                "UPDATE jobs SET progress = ?, history = ?, heartbeat_at = ?"
                " WHERE id = ? AND status = 'running'",
                (_dumps(progress), _dumps(history), utc_iso(), job_id)).rowcount
            row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
            return not updated or bool(row.fetchone()[0])

    def heartbeat(self, job_id):
        """Mark a running job's worker as alive now."""
        with self._db() as conn:
            conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                         (utc_iso(), job_id))

    def finish(self, job_id, status, result=None, error=None):
        """End a running (or, to cancel, queued) job; return False if it had already ended."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not a final status")
        with self._db() as conn:
            return conn.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?"
                " WHERE id = ? AND (status = 'running' OR (status = 'queued' AND ? = 'cancelled'))",
                (status, _dumps(result), error, utc_iso(), job_id, status)).rowcount == 1

    def cancel(self, job_id):
        """Return the job after cancelling it (queued) or asking it to stop (running)."""
        with self._db("BEGIN IMMEDIATE") as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            if row[0] in TERMINAL:
                raise JobFinished(f"training job {job_id!r} already {row[0]}")
            if row[0] == "queued":
                conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?",
                             (utc_iso(), job_id))
            else:  # the runner sees it at its next report and ends the job as cancelled
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def reap(self, is_alive=None):
        """Fail the running jobs whose worker is gone with "worker lost"; return their ids."""
        with self._db() as conn:
            running = self._select(conn, "status = 'running'")
        return self._reap(running, is_alive)

    def _reap(self, jobs, is_alive=None):
        """Fail those of jobs that run on a dead worker or missed heartbeats; return their ids."""
        is_alive = is_alive or worker_is_alive
        stale = utc_iso(time.time() - self.stale_s)
        lost = [j["id"] for j in jobs if j["status"] == "running"
                and ((j["heartbeat_at"] or "") < stale or not is_alive(j["worker"]))]
        return [job_id for job_id in lost if self.finish(job_id, "failed", error=WORKER_LOST)]

    def ping(self):
        """Raise StoreUnavailable unless jobs can be read and written."""
        with self._db("BEGIN IMMEDIATE") as conn:  # takes the write lock, as a claim would
            conn.execute("SELECT count(*) FROM jobs").fetchone()


class _Run:
    """The job this process is executing: its clock, unwritten progress and stop reason."""

    def __init__(self, job_id):
        self.job_id, self.started = job_id, time.monotonic()
        self.written_at, self.pending, self.stop_reason = self.started, None, None


class JobRunner:
    """A daemon thread per process that claims queued jobs and runs them one at a time.

    execute(job, report) -> result dict trains and saves a model; report(progress,
    history) -> bool records progress and returns True when training must stop, after
    which execute must return without saving. A watchdog thread keeps the job's heartbeat
    fresh (heartbeat_s, well under the backend's stale_s) even when execute reports rarely.
    """

    def __init__(self, backend, execute, *, max_running, timeout_s, poll_s=0.2,
                 heartbeat_s=2.0, worker=None):
        self.backend, self.execute, self.max_running = backend, execute, max_running
        self.timeout_s, self.poll_s, self.heartbeat_s = timeout_s, poll_s, heartbeat_s
        self.worker = worker  # set by start(): the id of the process that runs the thread
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._run = None  # the _Run of the job being executed, read by the watchdog and stop()
        self._threads = []

    def start(self):
        """Start the claim loop and the watchdog; return self."""
        self.worker = self.worker or worker_id()
        self._threads = [threading.Thread(target=target, name=f"nnserve-{name}", daemon=True)
                         for name, target in (("runner", self._loop), ("watchdog", self._watch))]
        for thread in self._threads:
            thread.start()
        return self

    def wake(self):
        """Make the claim loop look for a job now (call after creating one in this process)."""
        self._wake.set()

    def stop(self, timeout=10.0):
        """Stop claiming; ask the running job to stop; fail it if still running after timeout."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        run = self._run
        if run is not None:  # execute ignored the request; the process is going, say so now
            self._finish(run.job_id, "failed", None, SHUTDOWN)

    def _loop(self):
        """Claim and run jobs until stopped; wait poll_s (or a wake) when there is none."""
        while not self._stopping.is_set():
            self._wake.clear()  # before the claim, so a wake from now on is not lost
            try:
                job = self.backend.claim(self.worker, self.max_running)
            except ServiceError as exc:  # busy or broken database: try again next poll
                log.warning("cannot claim a training job: %s", exc)
                job = None
            except Exception:  # a bug must not end this process's training for good
                log.exception("cannot claim a training job")
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
            else:
                self._execute(job)

    def _execute(self, job):
        """Run one claimed job through execute() and record how it ended."""
        run = self._run = _Run(job["id"])

        def report(progress, history):
            return self._report(run, progress, history)

        try:
            result = self.execute(job, report)
            outcome = self._outcome(run, result)
        except Exception as exc:
            outcome = self._outcome(run, None, exc)
        self._flush(run)
        self._finish(run.job_id, *outcome)
        self._run = None

    def _outcome(self, run, result, exc=None):
        """Return (status, result, error): a stop wins, then an exception, then success."""
        if run.stop_reason == "cancelled":
            return "cancelled", None, None
        if run.stop_reason == "timeout":
            return "failed", None, self._time_limit_error()
        if run.stop_reason == "shutdown":
            return "failed", None, SHUTDOWN
        if exc is not None:
            return "failed", None, _error_message(run.job_id, exc)
        return "succeeded", result, None

    def _time_limit_error(self):
        return f"job exceeded its time limit of {self.timeout_s:g} s"

    def _report(self, run, progress, history):
        """Keep the latest progress (written every WRITE_INTERVAL_S); return True to stop."""
        now = time.monotonic()
        run.pending = ({**progress, "elapsed_s": round(now - run.started, 3)}, history)
        if run.stop_reason is None:
            run.stop_reason = self._stop_reason(run, now)
        return run.stop_reason is not None

    def _stop_reason(self, run, now):
        """Return why the job must stop now ("timeout", "shutdown", "cancelled"), or None."""
        if now - run.started > self.timeout_s:
            return "timeout"
        if self._stopping.is_set():
            return "shutdown"
        if now - run.written_at >= WRITE_INTERVAL_S and self._flush(run):
            return "cancelled"  # or no longer ours (reaped): either way, stop without a model
        return None

    def _flush(self, run):
        """Write the job's unwritten progress; return True when the backend says stop."""
        if run.pending is None:
            return False
        progress, history = run.pending
        run.pending, run.written_at = None, time.monotonic()
        try:
            return self.backend.report(run.job_id, progress, history)
        except ServiceError as exc:  # a busy database must not kill the training
            log.warning("cannot record progress of training job %s: %s", run.job_id, exc)
            return False

    def _finish(self, job_id, status, result, error):
        try:
            self.backend.finish(job_id, status, result, error)
        except ServiceError as exc:  # the job stays running until reaped once we are gone
            log.error("cannot record the end of training job %s: %s", job_id, exc)

    def _watch(self):
        """Beat the running job's heartbeat; fail it past its limit if execute stopped reporting."""
        while not self._stopping.wait(self.heartbeat_s):
            run = self._run
            if run is None:
                continue
            try:
                if time.monotonic() - run.started > self.timeout_s + self.heartbeat_s:
                    self.backend.finish(run.job_id, "failed", error=self._time_limit_error())
                else:
                    self.backend.heartbeat(run.job_id)
            except ServiceError as exc:
                log.warning("cannot beat training job %s: %s", run.job_id, exc)


def _error_message(job_id, exc):
    """Return the error a failed job shows: the message of expected errors, else a generic one."""
    if isinstance(exc, ServiceError | ValueError | ArithmeticError):
        return str(exc)
    log.error("training job %s failed unexpectedly", job_id, exc_info=exc)
    return INTERNAL
