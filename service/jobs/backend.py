"""JobBackend: the interface of every job backend, and the states of a job."""

import re
import time
from abc import ABC, abstractmethod

from ..errors import JobFinished, JobNotFound, LeaseLost, StoreUnavailable

KINDS = ("training", "sweep")  # what a job's request is: one training, or a sweep of trials
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
WORKER_LOST = "worker lost"
SHUTDOWN = "interrupted by shutdown"
INTERNAL = "internal error"
JOB_ID = re.compile(r"[0-9a-f]{32}")  # every job's id: uuid4().hex


def check_cancel(job_id, row):
    """Raise JobNotFound, or JobFinished (409) when a job's (status, saving, kind) row says
    a cancel cannot win now: ended, or saving. A sweep saving one group of its trials goes
    on to the next: its 409 says to cancel again, after Retry-After."""
    if row is None:
        raise JobNotFound(job_id)
    status, saving, kind = row
    if status in TERMINAL:
        raise JobFinished(f"{_noun(kind)} {job_id!r} already {status}")
    if saving and kind == "sweep":
        raise JobFinished(f"sweep {job_id!r} is saving a group of its trials: cancel again "
                          "in a moment to stop the rest", retry_after=1)
    if saving:
        raise JobFinished(f"training job {job_id!r} already finished training and is saving "
                          "its model")


def _noun(kind):
    return "sweep" if kind == "sweep" else "training job"


def check_id(job_id):
    """Return job_id if it has the form of a job's id; else raise JobNotFound: it names no
    job, and may hold what a database cannot carry (a NUL, which PostgreSQL's driver
    refuses with an error the service would answer 500)."""
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)
    return job_id


class JobBackend(ABC):
    """Where training jobs live, shared by every process (and host) of the service.

    A job is a dict of FIELDS; its kind (KINDS) says what its request is, and every kind is
    claimed and fenced alike. Its life: queued -> running -> succeeded | failed | cancelled,
    or queued -> cancelled; the TERMINAL states are final, nothing changes a job after one.
    A claim hands a job to one worker under a lease (job["lease"], a token new at each
    claim): report, heartbeat and finish are fenced, accepted only with the lease that
    holds the job, so a worker that lost its job (reaped as lost; with a shared database,
    claimed again elsewhere) can neither record progress nor end it. A running job whose
    worker is gone is failed with WORKER_LOST (where the backend runs a lost job once more,
    PostgreSQL, queued again on its first attempt), never left running.

    A running job that is to keep a model first takes begin_save, which is atomic with
    cancel: either the cancel came first (begin_save refuses, the job saves nothing and ends
    cancelled) or the job is saving (job["saving"]) and a cancel is JobFinished (409), as
    for an ended job. So a cancel that answers 200 never leaves a version behind.
    """

    @abstractmethod
    def create(self, model, request, epochs, kind="training"):
        """Return a new queued job of kind (KINDS) for model with request (a JSON dict)."""

    @abstractmethod
    def get(self, job_id):
        """Return the job, or raise JobNotFound."""

    @abstractmethod
    def summary(self, job_id):
        """Return the job as lists show it (no "history", its "request" summarised), as fresh
        as get() (a lost worker's job reads failed), or raise JobNotFound: the read a watcher
        makes at every report, which reads neither the request (up to max_train_points
        points), nor the history, nor the snapshot."""

    @abstractmethod
    def snapshot(self, job_id):
        """Return the snapshot of the job's latest report that carried one (a JSON dict),
        None before the first; raise JobNotFound. Reads nothing else of the job."""

    @abstractmethod
    def list(self, status=None, model=None, limit=50, offset=0, kind="training", full=False):
        """Return (jobs, total): one page of the matching jobs of kind, newest first, and
        their count, from one snapshot. Unless full, each job is its summary: no "history",
        and its "request" is records.summary_of(request), read without reading (or
        decoding) the request itself (stored beside it at create), so a list costs the same
        whatever the size of its jobs' data sets."""

    @abstractmethod
    def counts(self):
        """Return {status: number of jobs} for every status."""

    @abstractmethod
    def cancel(self, job_id):
        """Return the job after cancelling it (queued: at once) or asking it to stop (running:
        its next report and begin_save refuse); JobFinished if it has ended or is saving."""

    @abstractmethod
    def claim(self, worker, max_running):
        """Return the oldest queued job, now running on worker under a new lease, or None.

        Atomic across every process: no job is claimed twice, and at most max_running run."""

    @abstractmethod
    def report(self, job_id, lease, progress, history, snapshot=None):
        """Record a running job's progress and beat its heartbeat; return True when it must
        stop (cancel asked, or the lease no longer holds it). Fenced. A snapshot (a JSON
        dict of at most records.MAX_SNAPSHOT_CHARS, else ValueError before any write)
        replaces the job's last in the same write; None keeps the last."""

    @abstractmethod
    def begin_save(self, job_id, lease):
        """Put a running job into its saving phase and return True, unless a cancel was asked
        (or the lease no longer holds it): then return False and the job must save nothing.
        Atomic with cancel across every process; from True on, cancel raises JobFinished.
        Fenced."""

    @abstractmethod
    def end_save(self, job_id, lease):
        """Take a running job held by lease out of its saving phase (a sweep between groups
        of saves): a cancel may win again, and the job must take begin_save before it
        saves more. Fenced."""

    @abstractmethod
    def holds(self, job_id, lease, db=None, conn=None):
        """Return whether the job is running under lease in its saving phase. conn, when
        given, is a connection of a store in a transaction on db (a service.pg.Database):
        where db is this backend's own database the check is made in that transaction,
        locking the job's row and renewing its lease until it ends, so the check and what
        the transaction writes commit together."""

    def fence(self, job_id, lease, result=None):
        """Return the Fence of a job's saves under lease; result (a function of the saved
        version's meta, for a job that saves one version) makes the save end the job."""
        return Fence(self, job_id, lease, result)

    def succeed_in(self, job_id, lease, result, db, conn):
        """End the job held by lease in its saving phase as succeeded with result, in conn's
        transaction on db, and return True; False where db is not this backend's own
        database (the job then ends by finish, after the save)."""
        return False

    @abstractmethod
    def heartbeat(self, job_id, lease):
        """Mark the job's worker as alive now. Fenced."""

    @abstractmethod
    def finish(self, job_id, lease, status, result=None, error=None):
        """End a running job in a TERMINAL status; return False if it had ended already or
        the lease no longer holds it. Fenced."""

    @abstractmethod
    def prune(self, ended_before):
        """Delete the jobs that ended before ended_before (a utc_iso time); return how many."""

    @abstractmethod
    def recover(self):
        """End the running jobs whose worker is gone (at start-up: a previous run's) as
        reap does: failed "worker lost", or, on a backend that runs a lost job once more
        (PostgreSQL), queued again on their first attempt; return the ids of those failed."""

    @abstractmethod
    def ping(self):
        """Return None if jobs can be read and written now; else raise a store error."""

    def on_claimable(self, wake):
        """Arrange for wake() to be called (on another thread, quickly) whenever a job may
        have become claimable in any process: one created, one lost, a slot freed. Return
        True if the backend does, so a runner may poll only as a slow backstop; False (the
        default) if it cannot, and a runner must poll."""
        return False

    def wait(self, job_id, timeout_s, known=None):
        """Return the job once it has ended, or as it stands after timeout_s seconds. Given
        the job as known (just created), a read that finds the store unavailable is tried
        again until then, and the job returned as last read: a job committed is answered as
        such, never as a 503 that a client would retry (training and saving it twice)."""
        deadline, delay, job = time.monotonic() + timeout_s, 0.005, known
        while True:
            try:
                job = self.get(job_id)
            except StoreUnavailable:
                if known is None:
                    raise
            remaining = deadline - time.monotonic()
            if job["status"] in TERMINAL or remaining <= 0:
                return job
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.1)  # quick answers for short jobs, few reads for long ones


class Fence:
    """A job's hold on its saves, passed to ModelStore.save: a worker that lost its lease
    (paused past it, its job claimed again elsewhere) cannot add a version."""

    def __init__(self, backend, job_id, lease, result=None):
        self.backend, self.job_id, self.lease, self.result = backend, job_id, lease, result

    def hold(self, db=None, conn=None):
        """Return None while the job holds its lease; else raise LeaseLost. A store on a
        database passes its (db, conn) in the transaction that adds the version (holds)."""
        if not self.backend.holds(self.job_id, self.lease, db, conn):
            raise LeaseLost(self.job_id)

    def saved(self, db, conn, meta):
        """Called by a store on a database in the transaction that added the version meta:
        end the job there when it saves one version and shares the database, so "version
        saved" and "job succeeded" commit together (a database lost between the two would
        otherwise leave the job running, to be run again as attempt 2 and saved twice)."""
        if self.result is not None:
            self.backend.succeed_in(self.job_id, self.lease, self.result(meta), db, conn)


class ReapedReads:
    """get, summary and list for a backend whose reads meet lost jobs: a page or job that
    held one is read again after _reap (the backend's own) has ended it, so no read shows a
    lost job as running. The backend supplies _get(job_id, full), _page(status, model,
    limit, offset, kind, full) and _reap(jobs)."""

    def get(self, job_id):
        """Return the job, or raise JobNotFound."""
        return self._reaped(job_id, full=True)

    def summary(self, job_id):
        """Return the job as lists show it (its request and history left unread)."""
        return self._reaped(job_id, full=False)

    def _reaped(self, job_id, full):
        job = self._get(job_id, full)
        if job["status"] == "running" and self._reap_for_read([job]):
            job = self._get(job_id, full)
        return job

    def list(self, status=None, model=None, limit=50, offset=0, kind="training", full=False):
        """Return (jobs, total): one page of the matching jobs of kind (summaries unless
        full), newest first, and their count."""
        page = self._page(status, model, limit, offset, kind, full)
        if self._reap_for_read(page[0]):
            page = self._page(status, model, limit, offset, kind, full)
        return page

    def _reap_for_read(self, jobs):
        """Return whether the read must read again: _reap(jobs) changed a job, or could not
        say (a read-only database refuses the reap's write; one lost meanwhile may have
        taken some): the read is made again, which a read-only database answers."""
        try:
            return bool(self._reap(jobs))
        except StoreUnavailable:
            return True
