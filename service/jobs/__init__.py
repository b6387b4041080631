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

from .backend import INTERNAL, SHUTDOWN, STATUSES, TERMINAL, WORKER_LOST, JobBackend, utc_iso
from .processes import process_start, worker_id, worker_is_alive
from .runner import JobRunner
from .sqlite import FIELDS, SqliteJobs

__all__ = ["FIELDS", "INTERNAL", "SHUTDOWN", "STATUSES", "TERMINAL", "WORKER_LOST", "JobBackend",
           "JobRunner", "SqliteJobs", "process_start", "utc_iso", "worker_id", "worker_is_alive"]
