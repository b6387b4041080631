"""Training jobs: the backend interface, the SQLite backend, and the runner thread."""

from .backend import INTERNAL, KINDS, SHUTDOWN, STATUSES, TERMINAL, WORKER_LOST, JobBackend
from .processes import process_start, worker_id, worker_is_alive
from .records import FIELDS, SUMMARY_FIELDS, summary_of
from .runner import JobRunner
from .sqlite import SqliteJobs

__all__ = ["FIELDS", "INTERNAL", "KINDS", "SHUTDOWN", "STATUSES", "SUMMARY_FIELDS", "TERMINAL",
           "WORKER_LOST", "JobBackend", "JobRunner", "SqliteJobs", "process_start", "summary_of",
           "worker_id", "worker_is_alive"]
