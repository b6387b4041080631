"""PgJobs: the jobs in PostgreSQL, shared by every process of every host.

A claim takes the oldest queued row with FOR UPDATE SKIP LOCKED after a transaction-level
advisory lock, so counting the running jobs and claiming one is atomic across hosts (the
max_running limit holds everywhere). A claim's lease lasts lease_s on the database's clock
and each heartbeat or report renews it; a running job whose lease expired (its host died,
or was paused) is queued again once (attempt 2), then failed WORKER_LOST; so is a job whose
worker is a dead process of this host, at once, without waiting for its lease. The lease
token fences report, heartbeat and finish.
"""

import logging
import uuid
from contextlib import contextmanager

from ..pg.database import PING_TIMEOUT_S
from ..timestamps import utc_iso
from .backend import KINDS, TERMINAL, WORKER_LOST, JobBackend, check_cancel, check_id
from .processes import worker_is_alive
from .records import FIELDS, SUMMARY_FIELDS, dumps, job_of, new_job, snapshot_text
from .sql import SqlReads

log = logging.getLogger("nnserve.jobs")
HELD = "id = %s AND status = 'running' AND lease = %s"
CLAIM_LOCK = 0x6E6E_7365_7276_6502  # serialises claims: count, then take one
MAX_ATTEMPTS = 2
NOW = "extract(epoch from clock_timestamp())"
CHANNEL = "nnserve_jobs"
# the listener's backstop, each tick: a lost notification, or a lease that expired silently
CLAIMABLE = ("SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued') OR EXISTS (SELECT 1"
             f" FROM jobs WHERE status = 'running' AND lease_until < {NOW})")


def _job(row, fields):
    job = job_of(row[:-1], fields)
    job["attempt"] = row[-1]
    return job


class PgJobs(SqlReads, JobBackend):
    """Jobs in the database of db (a service.pg.Database)."""

    PARAM, ALWAYS = "%s", "true"  # SqlReads' dialect

    def __init__(self, db, *, lease_s=30.0, listener=None):
        self.db, self.lease_s = db, lease_s
        self._listener = listener  # default: the process's Listener of db, made when needed

    def _select(self, conn, where, args=(), tail="", full=True):
        """Return the jobs matching an SQL condition (summaries unless full), in tail's order."""
        fields = FIELDS if full else SUMMARY_FIELDS
        columns = ", ".join(fields if full else (*fields, "summary"))
        rows = conn.execute(f"SELECT {columns}, attempt FROM jobs WHERE {where} {tail}", args)
        return [_job(row, fields) for row in rows]

    def on_claimable(self, wake):
        """Call wake() on each NOTIFY of CHANNEL (sent by create, reap and finish, from any
        host), when listening (re)starts, and each listener tick that finds a queued job or
        an expired lease; return True."""
        def poll(conn):
            if conn.execute(CLAIMABLE).fetchone()[0]:
                wake()

        listener = self._listener or self.db.listener()
        listener.subscribe(CHANNEL, lambda _payload: wake(), poll)
        return True

    def create(self, model, request, epochs, kind="training"):
        """Return a new queued job of kind for model with request (a JSON dict)."""
        if kind not in KINDS:
            raise ValueError(f"{kind!r} is not a kind of job")
        job_id, values = new_job(model, request, epochs)
        with self.db.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO jobs (id, model, status, request, progress, history, summary,"
                " created_at, kind) VALUES (%s, %s, 'queued', %s, %s, %s, %s, %s, %s)",
                (job_id, model, values["request"], values["progress"], values["history"],
                 values["summary"], utc_iso(), kind))
            conn.execute(f"NOTIFY {CHANNEL}")  # sent at commit: runners on every host wake
            return self._select(conn, "id = %s", (job_id,))[0]

    def _reading(self):
        return self.db.connection()

    @contextmanager
    def _one_snapshot(self):
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield conn

    def claim(self, worker, max_running):
        """Return the oldest queued job, now running on worker under a new lease, or None."""
        with self.db.connection() as conn:  # a cheap read first: most polls find nothing
            queued, running, expired = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'queued'),"
                " count(*) FILTER (WHERE status = 'running'),"
                f" count(*) FILTER (WHERE status = 'running' AND lease_until < {NOW})"
                " FROM jobs WHERE status IN ('queued', 'running')").fetchone()
        if expired or (queued and running >= max_running):
            self.reap()  # a lost worker's job is queued again or failed, freeing its slot
        elif not queued:
            return None
        now = utc_iso()
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
            running = conn.execute(
                "SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]
            if running >= max_running:
                return None
            row = conn.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
                " FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', started_at = %s, heartbeat_at = %s,"
                f" worker = %s, lease = %s, lease_until = {NOW} + %s, attempt = attempt + 1"
                " WHERE id = %s", (now, now, worker, uuid.uuid4().hex, self.lease_s, row[0]))
            return self._select(conn, "id = %s", row)[0]

    def report(self, job_id, lease, progress, history, snapshot=None):
        """Record a running job's progress (and snapshot, unless None), renewing its lease;
        True when it must stop."""
        snapshot = snapshot_text(snapshot)
        with self.db.connection() as conn:
            row = conn.execute(
                "UPDATE jobs SET progress = %s, history = %s, heartbeat_at = %s,"
                f" lease_until = {NOW} + %s, snapshot = coalesce(%s::text, snapshot)"
                f" WHERE {HELD} RETURNING cancel_requested",
                (dumps(progress), dumps(history), utc_iso(), self.lease_s, snapshot, job_id,
                 lease)).fetchone()
        return row is None or bool(row[0])

    def begin_save(self, job_id, lease):
        """Put a running job held by lease into its saving phase unless a cancel was asked;
        True if it may save. One UPDATE: its row lock orders it with cancel's."""
        with self.db.connection() as conn:
            return conn.execute(
                f"UPDATE jobs SET saving = true WHERE {HELD} AND NOT cancel_requested",
                (job_id, lease)).rowcount == 1

    def end_save(self, job_id, lease):
        """Take the job held by lease out of its saving phase."""
        with self.db.connection() as conn:
            conn.execute(f"UPDATE jobs SET saving = false WHERE {HELD}", (job_id, lease))

    def holds(self, job_id, lease, db=None, conn=None):
        """Return whether the job is running under lease in its saving phase, renewing its
        lease; in conn's transaction when db is this database (its row stays locked, so a
        reap or cancel waits for that transaction, and finds the lease renewed)."""
        query = (f"UPDATE jobs SET lease_until = {NOW} + %s WHERE {HELD} AND saving")
        args = (self.lease_s, job_id, lease)
        if conn is not None and db is not None and db.url == self.db.url:
            return conn.execute(query, args).rowcount == 1
        with self.db.connection() as own:
            return own.execute(query, args).rowcount == 1

    def succeed_in(self, job_id, lease, result, db, conn):
        """End the saving job as succeeded in conn's transaction, where db is this database."""
        if db.url != self.db.url:
            return False
        ended = conn.execute(
            "UPDATE jobs SET status = 'succeeded', result = %s, error = NULL, finished_at = %s"
            f" WHERE {HELD} AND saving", (dumps(result), utc_iso(), job_id, lease)).rowcount
        if ended:
            conn.execute(f"NOTIFY {CHANNEL}")  # delivered at commit: a slot is free
        return ended == 1

    def heartbeat(self, job_id, lease):
        """Renew a running job's lease."""
        with self.db.connection() as conn:
            conn.execute(f"UPDATE jobs SET heartbeat_at = %s, lease_until = {NOW} + %s"
                         f" WHERE {HELD}", (utc_iso(), self.lease_s, job_id, lease))

    def finish(self, job_id, lease, status, result=None, error=None):
        """End a running job; False if it had ended already or is not held by lease."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not a final status")
        with self.db.connection() as conn, conn.transaction():
            ended = conn.execute(
                "UPDATE jobs SET status = %s, result = %s, error = %s, finished_at = %s"
                f" WHERE {HELD}", (status, dumps(result), error, utc_iso(), job_id,
                                   lease)).rowcount == 1
            if ended:
                conn.execute(f"NOTIFY {CHANNEL}")  # a slot is free: a queued job may run
            return ended

    def cancel(self, job_id):
        """Return the job after cancelling it (queued) or asking it to stop (running)."""
        with self.db.connection() as conn, conn.transaction():
            row = conn.execute("SELECT status, saving, kind FROM jobs WHERE id = %s FOR UPDATE",
                               (check_id(job_id),)).fetchone()
            check_cancel(job_id, row)
            if row[0] == "queued":
                conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = %s"
                             " WHERE id = %s", (utc_iso(), job_id))
            else:  # its runner, on whichever host, sees it at its next report
                conn.execute("UPDATE jobs SET cancel_requested = true WHERE id = %s", (job_id,))
        return self.get(job_id)

    def recover(self):
        """Queue again (or fail) the running jobs whose lease expired or worker is gone."""
        return self.reap()

    def reap(self, is_alive=None):
        """Handle the running jobs whose worker is lost; return the ids of those ended."""
        with self.db.connection() as conn:
            running = self._select(conn, "status = 'running'")
        return self._lost(running, is_alive)[0]

    def _reap(self, jobs):
        """Handle the lost of jobs (ReapedReads); return the ids of those ended or queued
        again, which a read must then read again."""
        ended, queued = self._lost(jobs)
        return ended + queued

    def _lost(self, jobs, is_alive=None):
        """Of jobs, those running past their lease or on a dead process of this host are
        queued again on their first attempt, failed WORKER_LOST after (cancelled, when a
        cancel was asked and the job was not saving); return the ids of (those ended, those
        queued again).
        A dead process is not waited for: its job is queued again (or failed) at once, by
        whichever host sees it first (a host restarted after a crash has the host id it had:
        its start-up reap sees its old workers dead, as another host would see their leases
        expire, and the job runs once more either way)."""
        is_alive = is_alive or worker_is_alive
        running = [j for j in jobs if j["status"] == "running"]
        if not running:
            return [], []
        ended, queued = [], []
        with self.db.connection() as conn:
            for job in running:
                # a dead process of this host, or an expired lease (another host died or
                # paused): queued again, once
                dead = not is_alive(job["worker"])
                lost = "true" if dead else f"lease_until < {NOW}"
                if job["cancel_requested"] and not job["saving"] and conn.execute(
                        "UPDATE jobs SET status = 'cancelled', finished_at = %s"
                        f" WHERE {HELD} AND {lost} AND cancel_requested AND NOT saving",
                        (utc_iso(), job["id"], job["lease"])).rowcount:
                    ended.append(job["id"])  # cancelled, as asked: not run again to be told
                    continue
                if job["attempt"] < MAX_ATTEMPTS and conn.execute(
                        "UPDATE jobs SET status = 'queued', lease = NULL, worker = NULL,"
                        f" lease_until = NULL, saving = false WHERE {HELD} AND {lost}",
                        (job["id"], job["lease"])).rowcount:
                    conn.execute(f"NOTIFY {CHANNEL}")
                    log.warning("job %s lost its worker %s: queued again (attempt %d)",
                                job["id"], job["worker"], job["attempt"] + 1)
                    queued.append(job["id"])
                    continue
                # Failed only with no attempt left. A lease that expired since the statement
                # above asked is queued again by the next reap, never failed here.
                expiry = f"({lost}) AND attempt >= {MAX_ATTEMPTS}"
                if conn.execute(
                        "UPDATE jobs SET status = 'failed', error = %s, finished_at = %s"
                        f" WHERE {HELD} AND {expiry}",
                        (WORKER_LOST, utc_iso(), job["id"], job["lease"])).rowcount:
                    ended.append(job["id"])
        return ended, queued

    def prune(self, ended_before):
        """Delete the jobs that ended before ended_before (a utc_iso time); return how many."""
        with self.db.connection() as conn:
            return conn.execute("DELETE FROM jobs WHERE finished_at < %s",
                                (ended_before,)).rowcount

    def ping(self):
        """Raise StoreUnavailable unless the database answers within PING_TIMEOUT_S."""
        with self.db.connection(PING_TIMEOUT_S) as conn:
            conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
