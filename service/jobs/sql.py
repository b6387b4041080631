"""SqlReads: the reads the SQL job backends (SQLite, PostgreSQL) make alike."""

import json

from ..errors import JobNotFound
from .backend import STATUSES, ReapedReads, check_id


class SqlReads(ReapedReads):
    """_get, _page (for ReapedReads), snapshot and counts in a backend's SQL dialect.

    The backend supplies PARAM (its driver's placeholder), ALWAYS (a condition every row
    meets), _select(conn, where, args, tail, full), _reading() (a context yielding a
    connection) and _one_snapshot() (the same, every read in it seeing one snapshot)."""

    PARAM, ALWAYS = "?", "1"

    def _get(self, job_id, full=True):
        with self._reading() as conn:
            jobs = self._select(conn, f"id = {self.PARAM}", (check_id(job_id),), full=full)
        if not jobs:
            raise JobNotFound(job_id)
        return jobs[0]

    def snapshot(self, job_id):
        """Return the job's latest snapshot (None before its first); JobNotFound."""
        with self._reading() as conn:
            row = conn.execute(f"SELECT snapshot FROM jobs WHERE id = {self.PARAM}",
                               (check_id(job_id),)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return None if row[0] is None else json.loads(row[0])

    def _page(self, status, model, limit, offset, kind, full):
        filters = [(f"{column} = {self.PARAM}", v)
                   for column, v in (("status", status), ("model", model), ("kind", kind)) if v]
        where = " AND ".join(sql for sql, _ in filters) or self.ALWAYS
        args = [v for _, v in filters]
        with self._one_snapshot() as conn:  # the page and its total agree
            total = conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", args).fetchone()[0]
            tail = f"ORDER BY created_at DESC, seq DESC LIMIT {self.PARAM} OFFSET {self.PARAM}"
            jobs = self._select(conn, where, [*args, limit, offset], tail, full)
        return jobs, total

    def counts(self):
        """Return {status: number of jobs} for every status."""
        with self._reading() as conn:
            rows = dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status"))
        return {status: rows.get(status, 0) for status in STATUSES}
