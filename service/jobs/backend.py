"""The job backend's interface, the job states, and the time format of its records."""

import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
WORKER_LOST = "worker lost"
SHUTDOWN = "interrupted by shutdown"
INTERNAL = "internal error"


def utc_iso(t=None):
    """Return time t (default now) as fixed-width UTC ISO 8601, so strings sort as times."""
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")



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
    def prune(self, ended_before):
        """Delete the jobs that ended before ended_before (a utc_iso time); return how many."""

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
