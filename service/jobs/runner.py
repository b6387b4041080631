"""JobRunner: the thread in each process that claims queued jobs and runs them."""

import logging
import math
import threading
import time

from ..errors import ServiceError
from ..timestamps import utc_iso
from .backend import INTERNAL, SHUTDOWN
from .processes import worker_id

log = logging.getLogger("nnserve.jobs")  # NNSERVE_LOG_LEVEL sets "nnserve"
WRITE_INTERVAL_S = 0.25
PRUNE_INTERVAL_S = 60.0  # how often a runner deletes jobs past their retention
BACKSTOP_POLL_S = 5.0  # how often a runner that is woken by its backend looks anyway
SAVE_WAIT_S = 10.0  # how long stop() lets a job that is saving its model finish
FINISH_ATTEMPTS, FINISH_RETRY_S = 3, 0.5
# How long the last report before a save, and the step into the saving phase, are asked
# again (every FINISH_RETRY_S) before a job that trained to the end fails unconfirmed: a
# connection cut or a failover's read-only seconds must not cost the training. Well under
# the heartbeat interval of the default lease (the watchdog waits for the lock meanwhile).
CONFIRM_S = 5.0
UNCONFIRMED = "the job database could not be reached before saving; no model was saved"


class _Execution:
    """The job this process is executing: its lease, clock, unwritten progress and stop reason.

    saving turns True once the last report let execute save; from then on neither the
    watchdog nor stop() ends the job. lock makes that turn and their ending exclusive.
    """

    def __init__(self, job):
        self.job_id, self.lease, self.started = job["id"], job["lease"], time.monotonic()
        self.written_at, self.pending, self.stop_reason = self.started, None, None
        self.saving, self.lock = False, threading.Lock()


class JobRunner:
    """A daemon thread per process that claims queued jobs and runs them one at a time.

    execute(job, report) -> result dict trains and saves a model; report(progress,
    history, last=False, snapshot=None) -> bool records progress and returns True when
    training must stop, after which execute must return without saving. snapshot, when
    given, is called (no arguments) only if this progress is written now, and its answer
    (a JSON dict, or None) written with it: the weights are copied at most once per write.
    execute makes its last report (last=True) just before it saves: that one is written at
    once (a write that fails stops the job, unsaved: it may have been cancelled or reaped
    meanwhile) and takes the backend's begin_save (atomic with cancel: a cancel after it
    is a 409), and when it returns False the job is committed to its save, which neither
    the time limit nor a shutdown interrupts, so a saved version belongs to a succeeded
    job (unless the job database stays unreachable through FINISH_ATTEMPTS after the
    save). A watchdog thread keeps the job's heartbeat fresh (heartbeat_s, well under the
    backend's stale_s) even when execute reports rarely.
    """

    def __init__(self, backend, execute, *, max_running, timeout_s, retention_s=None,
                 poll_s=0.2, heartbeat_s=2.0, worker=None):
        self.backend, self.execute, self.max_running = backend, execute, max_running
        self.timeout_s, self.poll_s, self.heartbeat_s = timeout_s, poll_s, heartbeat_s
        self.retention_s, self._pruned_at = retention_s, -math.inf
        self.worker = worker  # set by start(): the id of the process that runs the thread
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._draining = threading.Event()  # stop_claiming(): the process is stopping
        self._run = None  # the _Execution of the running job, read by the watchdog and stop()
        self._threads = []

    def start(self):
        """Start the claim loop and the watchdog; return self."""
        self.worker = self.worker or worker_id()
        if self.backend.on_claimable(self.wake):  # woken by every process: poll rarely
            self.poll_s = max(self.poll_s, BACKSTOP_POLL_S)
        self._threads = [threading.Thread(target=target, name=f"nnserve-{name}", daemon=True)
                         for name, target in (("runner", self._loop), ("watchdog", self._watch))]
        for thread in self._threads:
            thread.start()
        return self

    def wake(self):
        """Make the claim loop look for a job now (call after creating one in this process)."""
        self._wake.set()

    def stop_claiming(self):
        """Claim no more jobs (the process is stopping); the running one goes on."""
        self._draining.set()

    def stop(self, timeout=10.0):
        """Stop claiming; ask the running job to stop; fail it if still training after timeout."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        run = self._run
        if run is None:
            return
        with run.lock:  # execute ignored the request; the process is going, say so now
            if not run.saving:
                run.stop_reason = run.stop_reason or "shutdown"
                self._finish(run, "failed", None, SHUTDOWN)
                return
        self._threads[0].join(SAVE_WAIT_S)  # a job saving its model: let it end and succeed

    def _loop(self):
        """Claim and run jobs until stopped; wait poll_s (or a wake) when there is none."""
        while not self._stopping.is_set():
            if self._draining.is_set():
                self._stopping.wait(self.poll_s)
                continue
            self._prune()
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

    def _prune(self):
        """Delete the jobs ended more than retention_s ago, at most every PRUNE_INTERVAL_S."""
        now = time.monotonic()
        if self.retention_s is None or now - self._pruned_at < PRUNE_INTERVAL_S:
            return
        self._pruned_at = now
        try:
            pruned = self.backend.prune(utc_iso(time.time() - self.retention_s))
        except ServiceError as exc:  # busy or broken database: try again next interval
            log.warning("cannot delete old training jobs: %s", exc)
            return
        except Exception:  # a bug must not end this process's training for good
            log.exception("cannot delete old training jobs")
            return
        if pruned:
            log.info("deleted %d training jobs ended more than %g s ago", pruned,
                     self.retention_s)

    def _execute(self, job):
        """Run one claimed job through execute() and record how it ended."""
        run = self._run = _Execution(job)

        def report(progress, history, last=False, snapshot=None):
            return self._report(run, progress, history, last, snapshot)

        try:
            result = self.execute(job, report)
            outcome = self._outcome(run, result)
        except Exception as exc:
            outcome = self._outcome(run, None, exc)
        self._flush(run)
        self._finish(run, *outcome)
        self._run = None

    def _outcome(self, run, result, exc=None):
        """Return (status, result, error): a stop wins, then an exception, then success."""
        if run.stop_reason == "cancelled":
            return "cancelled", None, None
        if run.stop_reason == "timeout":
            return "failed", None, self._time_limit_error()
        if run.stop_reason == "shutdown":
            return "failed", None, SHUTDOWN
        if run.stop_reason == "unconfirmed":
            return "failed", None, UNCONFIRMED
        if exc is not None:
            return "failed", None, _error_message(run.job_id, exc)
        return "succeeded", result, None

    def _time_limit_error(self):
        return f"job exceeded its time limit of {self.timeout_s:g} s"

    def _report(self, run, progress, history, last=False, snapshot=None):
        """Keep the latest progress (written every WRITE_INTERVAL_S); return True to stop.

        The last report is written at once and, unless the job must stop, commits it to
        its save. A progress not written now drops its snapshot (the weights move on).
        """
        now = time.monotonic()
        due = last or now - run.written_at >= WRITE_INTERVAL_S
        run.pending = ({**progress, "elapsed_s": round(now - run.started, 3)}, history,
                       snapshot() if due and snapshot is not None else None)
        with run.lock:
            if run.saving and not last:
                self._end_save(run)  # saved, and training again (a sweep's next group)
            if run.stop_reason is None:
                run.stop_reason = self._stop_reason(run, now, write=last)
            run.saving = last and run.stop_reason is None
        return run.stop_reason is not None

    def _stop_reason(self, run, now, write=False):
        """Return why the job must stop now ("timeout", "shutdown", "cancelled"), or None."""
        if now - run.started > self.timeout_s:
            return "timeout"
        if self._stopping.is_set():
            return "shutdown"
        if write or now - run.written_at >= WRITE_INTERVAL_S:  # _report's due
            answer = self._flush(run)
            until = time.monotonic() + CONFIRM_S
            while write and answer is None and time.monotonic() < until:  # asked again
                time.sleep(FINISH_RETRY_S)
                answer = self._flush(run)
            if answer:
                return "cancelled"  # or no longer ours (reaped): either way, stop without a model
            if answer is None and write:
                return "unconfirmed"  # a model is saved only for a job known to be ours
            if write:
                return self._begin_save(run)
        return None

    def _begin_save(self, run):
        """Return None once the backend put the job into its saving phase (no cancel can win
        from now on), else why it must stop without saving."""
        until = time.monotonic() + CONFIRM_S
        while True:  # one UPDATE, as good twice as once
            try:
                return None if self.backend.begin_save(run.job_id, run.lease) else "cancelled"
            except ServiceError as exc:
                log.warning("cannot start saving training job %s: %s", run.job_id, exc)
            if time.monotonic() >= until:
                return "unconfirmed"
            time.sleep(FINISH_RETRY_S)

    def _end_save(self, run):
        """Leave the saving phase in the backend, so that a cancel may win again."""
        try:
            self.backend.end_save(run.job_id, run.lease)
        except ServiceError as exc:  # the job stays saving: cancels are refused until it ends
            log.warning("cannot end the saving phase of job %s: %s", run.job_id, exc)

    def _flush(self, run):
        """Write the job's unwritten progress; return True when the backend says stop, False
        to go on, None when it could not be asked."""
        if run.pending is None:
            return False
        progress, history, snapshot = run.pending
        run.pending, run.written_at = None, time.monotonic()
        try:
            return self.backend.report(run.job_id, run.lease, progress, history, snapshot)
        except ServiceError as exc:  # a busy database must not kill the training
            log.warning("cannot record progress of training job %s: %s", run.job_id, exc)
            if run.pending is None:  # kept for the next write, unless a newer one came
                run.pending = progress, history, snapshot
            return None

    def _finish(self, run, status, result, error):
        """Record how the job ended, trying FINISH_ATTEMPTS times (a saved model's job must
        not be left running, to be reaped as failed)."""
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            try:
                self.backend.finish(run.job_id, run.lease, status, result, error)
                return
            except ServiceError as exc:  # after the last, reaped as lost once we are gone
                log.error("cannot record the end of training job %s (attempt %d of %d): %s",
                          run.job_id, attempt, FINISH_ATTEMPTS, exc)
            if attempt < FINISH_ATTEMPTS:
                time.sleep(FINISH_RETRY_S)

    def _watch(self):
        """Beat the running job's heartbeat; fail it past its limit if execute stopped reporting."""
        while not self._stopping.wait(self.heartbeat_s):
            run = self._run
            if run is None:
                continue
            try:
                with run.lock:
                    overdue = time.monotonic() - run.started > self.timeout_s + self.heartbeat_s
                    if overdue and not run.saving:
                        run.stop_reason = run.stop_reason or "timeout"
                        self.backend.finish(run.job_id, run.lease, "failed",
                                            error=self._time_limit_error())
                    else:
                        self.backend.heartbeat(run.job_id, run.lease)
            except ServiceError as exc:
                log.warning("cannot beat training job %s: %s", run.job_id, exc)


def _error_message(job_id, exc):
    """Return the error a failed job shows: the message of expected errors, else a generic one."""
    if isinstance(exc, ServiceError | ValueError | ArithmeticError):
        return str(exc)
    log.error("training job %s failed unexpectedly", job_id, exc_info=exc)
    return INTERNAL
