"""SqliteJobs: the jobs in one SQLite file (WAL), shared by every thread and process."""

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import ServiceError, StoreFull, StoreUnavailable
from ..timestamps import utc_iso
from .backend import KINDS, TERMINAL, WORKER_LOST, JobBackend, check_cancel, check_id
from .processes import worker_is_alive
from .records import FIELDS, SUMMARY_FIELDS, dumps, job_of, new_job, snapshot_text, summary_of
from .sql import SqlReads

log = logging.getLogger("nnserve.jobs")  # NNSERVE_LOG_LEVEL sets "nnserve"
_INHERITED = []  # connections a forked child got from its parent: kept open, never used

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
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease TEXT,  -- a new token at each claim: the fence of report, heartbeat and finish
    kind TEXT NOT NULL DEFAULT 'training',  -- backend.KINDS
    saving INTEGER NOT NULL DEFAULT 0,  -- begin_save taken: a cancel is now too late
    summary TEXT,  -- records.summary_of(request): what lists read instead of request
    snapshot TEXT  -- the latest report's snapshot (records.snapshot_text), read alone
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished_at);
"""
HELD = "id = ? AND status = 'running' AND lease = ?"
LEAVE_SAVING = "leave saving jobs"  # SqliteJobs(saved=...): see the class


class SqliteJobs(SqlReads, JobBackend):
    """Jobs in one SQLite file (WAL), shared by all threads and processes that open it.

    A file store cannot end a job in the transaction that adds its version (PostgreSQL
    does), so a worker can die between the two. saved(job) -> the job's result, or None,
    looks in the store for the version a lost training job saved: such a job is ended as
    succeeded with it, not failed. saved=LEAVE_SAVING (gunicorn's master, which loads no
    store, before the workers start) leaves a lost job that was saving for a process that
    can look; without saved, it fails as lost."""

    def __init__(self, path, *, stale_s=30.0, busy_timeout_s=5.0, saved=None):
        self.path, self.stale_s, self.busy_timeout_s = Path(path), stale_s, busy_timeout_s
        self.saved = saved
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("job database %s unavailable: %s", self.path, exc)
            raise StoreUnavailable(f"job database unavailable: {exc}") from exc
        with self._db() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
            conn.executescript(SCHEMA)
        with self._db("BEGIN IMMEDIATE") as conn:  # one process at a time migrates
            _migrate(conn)

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
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StoreFull(f"job database full: {exc}") from exc
            raise StoreUnavailable(f"job database unavailable: {exc}") from exc

    def _select(self, conn, where, args=(), tail="", full=True):
        """Return the jobs matching an SQL condition, in the order tail gives; summaries
        unless full (their request and history columns are never read)."""
        fields = FIELDS if full else SUMMARY_FIELDS
        columns = ", ".join(fields if full else (*fields, "summary"))
        sql = f"SELECT {columns} FROM jobs WHERE {where} {tail}"
        return [job_of(row, fields) for row in conn.execute(sql, args)]

    def create(self, model, request, epochs, kind="training"):
        """Return a new queued job of kind for model with request (a JSON dict)."""
        if kind not in KINDS:
            raise ValueError(f"{kind!r} is not a kind of job")
        job_id, values = new_job(model, request, epochs)
        with self._db() as conn:
            conn.execute(
                "INSERT INTO jobs (id, model, status, request, progress, history, summary,"
                " created_at, kind) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, model, values["request"], values["progress"], values["history"],
                 values["summary"], utc_iso(), kind),
            )
        return self.get(job_id)

    def _reading(self):
        return self._db()

    def _one_snapshot(self):
        return self._db("BEGIN")

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
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?, worker = ?,"
                " lease = ? WHERE id = ?", (now, now, worker, uuid.uuid4().hex, row[0]))
            return self._select(conn, "id = ?", row)[0]

    def report(self, job_id, lease, progress, history, snapshot=None):
        """Record a running job's progress (and snapshot, unless None); return True when it
        must stop (cancel, not ours)."""
        snapshot = snapshot_text(snapshot)
        with self._db() as conn:
            updated = conn.execute(
                "UPDATE jobs SET progress = ?, history = ?, heartbeat_at = ?,"
                f" snapshot = coalesce(?, snapshot) WHERE {HELD}",
                (dumps(progress), dumps(history), utc_iso(), snapshot, job_id,
                 lease)).rowcount
            row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
            return not updated or bool(row.fetchone()[0])

    def begin_save(self, job_id, lease):
        """Put a running job held by lease into its saving phase unless a cancel was asked;
        return True if it may save. One UPDATE: atomic with cancel's write transaction."""
        with self._db() as conn:
            return conn.execute(
                f"UPDATE jobs SET saving = 1 WHERE {HELD} AND cancel_requested = 0",
                (job_id, lease)).rowcount == 1

    def end_save(self, job_id, lease):
        """Take the job held by lease out of its saving phase."""
        with self._db() as conn:
            conn.execute(f"UPDATE jobs SET saving = 0 WHERE {HELD}", (job_id, lease))

    def holds(self, job_id, lease, db=None, conn=None):
        """Return whether the job is running under lease in its saving phase (a store's
        connection is never this file's: checked on its own)."""
        with self._db() as own:
            return own.execute(f"SELECT 1 FROM jobs WHERE {HELD} AND saving = 1",
                               (job_id, lease)).fetchone() is not None

    def heartbeat(self, job_id, lease):
        """Mark a running job's worker as alive now."""
        with self._db() as conn:
            conn.execute(f"UPDATE jobs SET heartbeat_at = ? WHERE {HELD}",
                         (utc_iso(), job_id, lease))

    def finish(self, job_id, lease, status, result=None, error=None):
        """End a running job; return False if it had ended already or is not held by lease."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not a final status")
        with self._db() as conn:
            return conn.execute(
                f"UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE {HELD}",
                (status, dumps(result), error, utc_iso(), job_id, lease)).rowcount == 1

    def cancel(self, job_id):
        """Return the job after cancelling it (queued) or asking it to stop (running)."""
        with self._db("BEGIN IMMEDIATE") as conn:
            row = conn.execute("SELECT status, saving, kind FROM jobs WHERE id = ?",
                               (check_id(job_id),)).fetchone()
            check_cancel(job_id, row)
            if row[0] == "queued":
                conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?",
                             (utc_iso(), job_id))
            else:  # the runner sees it at its next report and ends the job as cancelled
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def recover(self):
        """Fail the running jobs whose worker is gone; return their ids."""
        return self.reap()

    def reap(self, is_alive=None):
        """Fail the running jobs whose worker is gone with "worker lost"; return their ids."""
        with self._db() as conn:
            running = self._select(conn, "status = 'running'")
        return self._reap(running, is_alive)

    def _reap(self, jobs, is_alive=None):
        """Fail those of jobs that run on a dead worker or missed heartbeats; return their ids."""
        is_alive = is_alive or worker_is_alive
        stale = utc_iso(time.time() - self.stale_s)
        lost = [j for j in jobs if j["status"] == "running"
                and ((j["heartbeat_at"] or "") < stale or not is_alive(j["worker"]))]
        return [j["id"] for j in lost if self._end_lost(j)]

    def _end_lost(self, job):
        """End a lost job: succeeded with the version it saved, if it got so far, else
        cancelled if a cancel was asked, else failed WORKER_LOST; return whether this call
        ended it."""
        if job["saving"] and job["kind"] == "training" and self.saved is not None:
            if self.saved is LEAVE_SAVING:
                return False  # the store may hold its version: not this process's to say
            try:
                result = self.saved(job)
            except ServiceError as exc:  # the store cannot say now: the next reap asks again
                log.warning("cannot look for the version of lost job %s: %s", job["id"], exc)
                return False
            if result is not None:
                return self.finish(job["id"], job["lease"], "succeeded", result=result)
        if job["cancel_requested"] and not job["saving"]:
            return self.finish(job["id"], job["lease"], "cancelled")
        return self.finish(job["id"], job["lease"], "failed", error=WORKER_LOST)

    def prune(self, ended_before):
        """Delete the jobs that ended before ended_before (a utc_iso time); return how many."""
        with self._db() as conn:
            return conn.execute("DELETE FROM jobs WHERE finished_at < ?",
                                (ended_before,)).rowcount

    def ping(self):
        """Raise StoreUnavailable unless jobs can be read and written."""
        with self._db("BEGIN IMMEDIATE") as conn:  # takes the write lock, as a claim would
            conn.execute("SELECT count(*) FROM jobs").fetchone()


def _migrate(conn):
    """Add the columns a database made by an earlier release lacks; fill in summaries."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for column, sql_type in (("lease", "TEXT"), ("kind", "TEXT NOT NULL DEFAULT 'training'"),
                             ("saving", "INTEGER NOT NULL DEFAULT 0"), ("summary", "TEXT"),
                             ("snapshot", "TEXT")):
        if column not in columns:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {sql_type}")
    if "summary" not in columns:  # once: decode each old request to summarise it
        rows = conn.execute("SELECT id, request FROM jobs").fetchall()
        conn.executemany("UPDATE jobs SET summary = ? WHERE id = ?",
                         [(dumps(summary_of(json.loads(request))), job_id)
                          for job_id, request in rows])
