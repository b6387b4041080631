"""Training jobs: the SQLite backend across threads and processes, and the runner thread."""

import multiprocessing
import os
import queue
import signal
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta

import pytest

from service.errors import InvalidInput, JobFinished, JobNotFound, StoreUnavailable
from service.jobs import FIELDS, JobRunner, SqliteJobs, utc_iso, worker_id
from service.jobs import runner as runner_module

# Forked children inherit the test module, so their targets need no pickling or re-import.
FORK = multiprocessing.get_context("fork")
HISTORY = {"epoch": [0], "loss": [0.5], "accuracy": [0.5]}


def progress(epoch, epochs=10):
    return {"epoch": epoch, "epochs": epochs, "loss": 1 / (epoch + 1), "accuracy": 0.5}


def loop_until_stopped(job, report):
    """An execute() that trains until report says stop, then returns a result it must not keep."""
    epoch = 0
    while not report(progress(epoch), HISTORY):
        epoch += 1
        time.sleep(0.005)
    return {"name": job["model"], "version": 1, "metrics": {}}


@pytest.fixture
def jobs(tmp_path):
    return SqliteJobs(tmp_path / "jobs.sqlite3")


@pytest.fixture
def start_runner(jobs):
    """Return start(execute, **options) -> a started JobRunner on jobs; all are stopped after."""
    runners = []

    def start(execute, **options):
        options = {"max_running": 2, "timeout_s": 10.0, "poll_s": 0.05, **options}
        runners.append(JobRunner(jobs, execute, **options).start())
        return runners[-1]

    yield start
    for runner in runners:
        runner.stop(timeout=2.0)


def run_one(jobs, runner, execute_started=None, model="xor"):
    """Create a job, wake the runner, wait until it runs (or ends); return the job id."""
    job_id = jobs.create(model, {}, 10)["id"]
    runner.wake()
    if execute_started is not None:
        assert execute_started.wait(2.0)
    return job_id


# The backend on its own


def test_create_returns_a_queued_job_with_every_field(jobs):
    request = {"name": "xor", "architecture": {"hidden": [4, 3]}, "points": [[0.5, -1.0]]}
    job = jobs.create("xor", request, epochs=200)
    assert set(job) == set(FIELDS) and len(job["id"]) == 32
    assert job["status"] == "queued" and job["model"] == "xor" and job["request"] == request
    assert job["progress"] == {"epoch": 0, "epochs": 200, "loss": None, "accuracy": None,
                               "elapsed_s": 0.0}
    assert job["history"] == {"epoch": [], "loss": [], "accuracy": []}
    assert (job["result"], job["error"], job["started_at"], job["finished_at"]) == (None,) * 4
    assert job["worker"] is None and job["cancel_requested"] is False
    assert datetime.fromisoformat(job["created_at"]).utcoffset() == timedelta(0)
    assert jobs.get(job["id"]) == job


def test_get_of_an_unknown_job_raises_job_not_found(jobs):
    with pytest.raises(JobNotFound, match="nope"):
        jobs.get("nope")


def test_list_is_newest_first_with_filters_and_pages(jobs):
    ids = [jobs.create(model, {"n": i}, 10)["id"] for i, model in enumerate("ababa")]
    page, total = jobs.list()
    assert [j["id"] for j in page] == ids[::-1] and total == 5
    page, total = jobs.list(model="a", limit=2, offset=1)
    assert [j["id"] for j in page] == [ids[2], ids[0]] and total == 3
    assert jobs.claim(worker_id(), max_running=1)["id"] == ids[0]  # the oldest queued
    page, total = jobs.list(status="running")
    assert [j["id"] for j in page] == [ids[0]] and total == 1
    assert jobs.list(status="queued", model="b")[1] == 2
    assert jobs.list(offset=5) == ([], 5)


def test_report_round_trips_progress_and_history_as_json(jobs):
    job_id = jobs.create("xor", {}, 3)["id"]
    jobs.claim(worker_id(), max_running=1)
    reported = {"epoch": 2, "epochs": 3, "loss": 0.125, "accuracy": 0.75, "elapsed_s": 0.5}
    history = {"epoch": [0, 1, 2], "loss": [0.5, 0.25, 0.125], "accuracy": [0.5, float("nan"), 1]}
    assert jobs.report(job_id, reported, history) is False
    job = jobs.get(job_id)
    assert job["progress"] == reported
    assert job["history"] == {**history, "accuracy": [0.5, None, 1]}  # JSON has no NaN
    assert job["heartbeat_at"] >= job["started_at"]


def test_claim_takes_the_oldest_job_while_a_slot_is_free(jobs):
    a, b, c = (jobs.create("m", {}, 1)["id"] for _ in range(3))
    me = worker_id()
    assert jobs.claim(me, max_running=2)["id"] == a
    second = jobs.claim(me, max_running=2)
    assert (second["id"], second["status"], second["worker"]) == (b, "running", me)
    assert second["started_at"] is not None
    assert jobs.claim(me, max_running=2) is None
    assert jobs.finish(a, "succeeded", result={"name": "m"})
    assert jobs.claim(me, max_running=2)["id"] == c
    assert jobs.claim(me, max_running=9) is None  # nothing left queued


def test_finish_never_overwrites_an_ended_job(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    assert jobs.finish(job_id, "succeeded") is False  # a queued job can only be cancelled
    jobs.claim(worker_id(), max_running=1)
    assert jobs.finish(job_id, "succeeded", result={"version": 3}) is True
    assert jobs.finish(job_id, "failed", error="late") is False
    assert (jobs.get(job_id)["status"], jobs.get(job_id)["error"]) == ("succeeded", None)
    with pytest.raises(ValueError, match="final status"):
        jobs.finish(job_id, "running")


def claim_until_empty(backend, results):
    """Child process: claim with max_running=2, hold each job 30 ms; put (id, start, end)."""
    me = worker_id()
    while True:
        job = backend.claim(me, max_running=2)
        if job is None and not backend.list(status="queued")[1]:
            break
        if job is None:
            time.sleep(0.002)
            continue
        start = time.monotonic()  # after the claim committed ...
        time.sleep(0.03)
        results.put((job["id"], start, time.monotonic()))  # ... and before the finish commits
        backend.finish(job["id"], "succeeded")
    results.put(None)


def test_claim_respects_max_running_across_processes(jobs):
    ids = {jobs.create("m", {}, 1)["id"] for _ in range(12)}
    results = FORK.Queue()
    # the children inherit jobs with the parent's open connection: each must open its own
    children = [FORK.Process(target=claim_until_empty, args=(jobs, results)) for _ in range(4)]
    for child in children:
        child.start()
    claims, done = [], 0
    while done < len(children):
        item = results.get(timeout=10)
        done, claims = (done + 1, claims) if item is None else (done, [*claims, item])
    for child in children:
        child.join(5)
    assert sorted(job_id for job_id, _, _ in claims) == sorted(ids)  # each job exactly once
    # the intervals lie inside the real running times, so their overlap bounds it from below
    events = sorted([(start, 1) for _, start, _ in claims] + [(end, -1) for _, _, end in claims])
    running = [sum(step for _, step in events[: i + 1]) for i in range(len(events))]
    assert max(running) == 2
    assert len({job["worker"] for job in jobs.list()[0]}) > 1


def test_cancel_of_a_queued_job_is_immediate(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    job = jobs.cancel(job_id)
    assert job["status"] == "cancelled" and job["finished_at"] is not None
    assert jobs.claim(worker_id(), max_running=2) is None
    with pytest.raises(JobFinished, match="already cancelled"):
        jobs.cancel(job_id)


def test_cancel_of_an_ended_job_raises_job_finished(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    jobs.claim(worker_id(), max_running=1)
    jobs.finish(job_id, "succeeded", result={"version": 1})
    with pytest.raises(JobFinished, match="already succeeded"):
        jobs.cancel(job_id)
    assert jobs.get(job_id)["status"] == "succeeded"
    with pytest.raises(JobNotFound):
        jobs.cancel("nope")


def claim_and_hang(path, claimed):
    """Child process: claim one job, say which, and run until killed."""
    claimed.put(SqliteJobs(path).claim(worker_id(), max_running=1)["id"])
    time.sleep(60)


def test_job_of_a_killed_process_fails_with_worker_lost(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    claimed = FORK.Queue()
    child = FORK.Process(target=claim_and_hang, args=(jobs.path, claimed), daemon=True)
    child.start()
    assert claimed.get(timeout=5) == job_id
    assert jobs.get(job_id)["status"] == "running"  # alive: left alone
    os.kill(child.pid, signal.SIGKILL)
    job = jobs.wait(job_id, 5.0)  # before join: the child is a zombie first, then gone
    child.join(5)
    assert (job["status"], job["error"]) == ("failed", "worker lost")
    assert job["worker"].split(":")[1] == str(child.pid) and job["finished_at"] is not None


def dead_worker():
    """Return the worker id of a process of this host that has ended."""
    gone = FORK.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    return f"{socket.gethostname()}:{gone.pid}:1"


def test_reap_fails_jobs_of_dead_pids_reused_pids_and_stale_heartbeats(tmp_path):
    jobs = SqliteJobs(tmp_path / "jobs.sqlite3", stale_s=0.3)
    workers = {"alive": worker_id(), "dead": dead_worker(),
               "reused": f"{socket.gethostname()}:{os.getpid()}:1", "elsewhere": "otherhost:1:1"}
    hooked = jobs.create("m", {}, 1)["id"]
    jobs.claim("policy:gone", max_running=9)
    assert jobs.reap(is_alive=lambda worker: worker != "policy:gone") == [hooked]
    ids = {}
    for name, worker in workers.items():
        ids[name] = jobs.create(name, {}, 1)["id"]
        jobs.claim(worker, max_running=9)
    assert sorted(jobs.fail_interrupted()) == sorted([ids["dead"], ids["reused"]])
    time.sleep(0.35)
    jobs.heartbeat(ids["alive"])
    assert jobs.reap() == [ids["elsewhere"]]  # another host: only its heartbeat tells
    assert jobs.get(ids["alive"])["status"] == "running"
    assert jobs.get(ids["elsewhere"])["error"] == "worker lost"


def test_claim_frees_the_slot_held_by_a_dead_worker(jobs):
    lost = jobs.create("m", {}, 1)["id"]
    jobs.claim(dead_worker(), max_running=1)
    waiting = jobs.create("m", {}, 1)["id"]
    assert jobs.claim(worker_id(), max_running=1)["id"] == waiting
    assert jobs.get(lost)["error"] == "worker lost"


def test_jobs_survive_reopening_the_database(tmp_path):
    path = tmp_path / "store" / ".jobs.sqlite3"
    first = SqliteJobs(path)
    done = first.create("xor", {"epochs": 2}, 2)["id"]
    first.claim(worker_id(), max_running=1)
    first.report(done, progress(2, 2), HISTORY)
    first.finish(done, "succeeded", result={"name": "xor", "version": 1, "metrics": {}})
    first.create("and", {"epochs": 5}, 5)
    again = SqliteJobs(path)
    assert again.list() == first.list() and again.list()[1] == 2
    assert again.get(done)["result"] == {"name": "xor", "version": 1, "metrics": {}}
    assert again.get(done)["progress"]["epoch"] == 2


def test_wait_returns_the_job_as_it_stands_after_the_timeout(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    start = time.monotonic()
    assert jobs.wait(job_id, 0.1)["status"] == "queued"
    assert 0.1 <= time.monotonic() - start < 0.5


def test_ping_raises_store_unavailable_when_the_database_is_locked(tmp_path):
    jobs = SqliteJobs(tmp_path / "jobs.sqlite3", busy_timeout_s=0.05)
    jobs.ping()
    other = sqlite3.connect(jobs.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked"):
        jobs.ping()
    other.execute("ROLLBACK")
    other.close()
    jobs.ping()


def test_an_unusable_path_raises_store_unavailable(tmp_path):
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(StoreUnavailable):
        SqliteJobs(tmp_path / "a-directory")


# The runner


def test_runner_runs_a_job_to_success_and_keeps_its_result(jobs, start_runner):
    result = {"name": "xor", "version": 1, "metrics": {"loss": 0.25}}

    def execute(job, report):
        for epoch in range(1, 4):
            assert report(progress(epoch, 3), HISTORY) is False
        return result

    runner = start_runner(execute)
    job = jobs.wait(run_one(jobs, runner), 3.0)
    assert (job["status"], job["result"], job["error"]) == ("succeeded", result, None)
    assert job["progress"]["epoch"] == 3  # the last report is written, not lost to throttling
    assert job["worker"] == runner.worker and job["started_at"] <= job["finished_at"]


@pytest.mark.parametrize(("exc", "error"), [
    (ValueError("labels must be 0 or 1"), "labels must be 0 or 1"),
    (ZeroDivisionError("loss is nan"), "loss is nan"),
    (InvalidInput("single-class data"), "single-class data"),
    (KeyError("W"), "internal error"),
])
def test_runner_fails_a_job_whose_execute_raises(jobs, start_runner, caplog, exc, error):
    def execute(job, report):
        raise exc

    job = jobs.wait(run_one(jobs, start_runner(execute)), 3.0)
    assert (job["status"], job["error"], job["result"]) == ("failed", error, None)
    assert ("failed unexpectedly" in caplog.text) == (error == "internal error")


def test_runner_stops_a_running_job_on_cancel(jobs, start_runner):
    started, returned = threading.Event(), threading.Event()

    def execute(job, report):
        started.set()
        loop_until_stopped(job, report)
        returned.set()
        return {"name": "never kept"}

    job_id = run_one(jobs, start_runner(execute), started)
    assert jobs.cancel(job_id)["status"] == "running"  # asked; the runner sees it next report
    job = jobs.wait(job_id, 3.0)
    assert (job["status"], job["result"]) == ("cancelled", None) and returned.is_set()


def test_runner_fails_a_job_over_its_time_limit(jobs, start_runner):
    job = jobs.wait(run_one(jobs, start_runner(loop_until_stopped, timeout_s=0.2)), 3.0)
    assert (job["status"], job["result"]) == ("failed", None)
    assert job["error"] == "job exceeded its time limit of 0.2 s"
    assert 0.2 <= job["progress"]["elapsed_s"] < 1.0


def test_watchdog_fails_a_job_that_stops_reporting_past_its_limit(jobs, start_runner):
    release = threading.Event()

    def execute(job, report):
        release.wait(3.0)  # stuck, never reporting
        return {"name": "too late"}

    job_id = run_one(jobs, start_runner(execute, timeout_s=0.1, heartbeat_s=0.1))
    job = jobs.wait(job_id, 2.0)
    release.set()
    assert (job["status"], job["error"]) == ("failed", "job exceeded its time limit of 0.1 s")
    time.sleep(0.1)
    assert jobs.get(job_id)["status"] == "failed"  # the late return does not overwrite it


def test_wake_claims_a_new_job_within_50_ms(jobs, start_runner):
    claimed, latencies = queue.Queue(), []
    runner = start_runner(lambda job, report: claimed.put(time.monotonic()), poll_s=5.0)
    for _ in range(3):
        time.sleep(0.1)  # the runner found nothing and sleeps its 5 s poll
        jobs.create("m", {}, 1)
        woken = time.monotonic()
        runner.wake()
        latencies.append(claimed.get(timeout=2.0) - woken)
    assert sorted(latencies)[1] < 0.05  # the median: one scheduling hiccup on a busy machine


def test_report_writes_at_most_every_quarter_second(jobs, start_runner):
    count = sqlite3.connect(jobs.path, isolation_level=None)
    count.executescript("CREATE TABLE writes (n INTEGER); CREATE TRIGGER count_writes AFTER"
                        " UPDATE OF progress ON jobs BEGIN INSERT INTO writes VALUES (1); END")

    def execute(job, report):
        epoch, end = 0, time.monotonic() + 0.6
        while time.monotonic() < end:
            epoch += 1
            report(progress(epoch), HISTORY)
            time.sleep(0.001)
        return {"epochs": epoch}

    job = jobs.wait(run_one(jobs, start_runner(execute)), 3.0)
    writes = count.execute("SELECT count(*) FROM writes").fetchone()[0]
    count.close()
    assert job["result"]["epochs"] > 100  # hundreds of reports ...
    assert 2 <= writes <= 4  # ... written at 0.25 s, 0.5 s and at the end
    assert job["progress"]["epoch"] == job["result"]["epochs"]


def test_stop_fails_the_running_job_as_interrupted(jobs, start_runner):
    started = threading.Event()

    def execute(job, report):
        started.set()
        return loop_until_stopped(job, report)

    runner = start_runner(execute)
    job_id = run_one(jobs, runner, started)
    runner.stop(timeout=2.0)
    job = jobs.get(job_id)
    assert (job["status"], job["error"], job["result"]) == ("failed", "interrupted by shutdown",
                                                            None)


def test_stop_fails_a_job_that_ignores_it_after_the_timeout(jobs, start_runner):
    started, release = threading.Event(), threading.Event()

    def execute(job, report):
        started.set()
        release.wait(3.0)
        return {"name": "too late"}

    runner = start_runner(execute)
    job_id = run_one(jobs, runner, started)
    begin = time.monotonic()
    runner.stop(timeout=0.2)
    assert time.monotonic() - begin < 0.5
    release.set()
    assert (jobs.get(job_id)["status"], jobs.get(job_id)["error"]) == (
        "failed", "interrupted by shutdown")


def _saves_slowly(saving, release):
    """An execute() whose last report commits it to a save that lasts until release."""

    def execute(job, report):
        if report(progress(10), HISTORY, last=True):
            return None
        saving.set()
        release.wait(3.0)
        return {"name": job["model"], "version": 1, "metrics": {}}

    return execute


def test_a_job_saving_its_model_outlives_its_time_limit(jobs, start_runner):
    saving, release = threading.Event(), threading.Event()
    runner = start_runner(_saves_slowly(saving, release), timeout_s=0.1, heartbeat_s=0.05)
    job_id = run_one(jobs, runner, saving)
    time.sleep(0.4)  # the watchdog beats past the limit: it must not fail a saving job
    assert jobs.get(job_id)["status"] == "running"
    release.set()
    assert jobs.wait(job_id, 3.0)["status"] == "succeeded"


def test_stop_lets_a_saving_job_succeed(jobs, start_runner):
    saving, release = threading.Event(), threading.Event()
    runner = start_runner(_saves_slowly(saving, release))
    job_id = run_one(jobs, runner, saving)
    threading.Timer(0.3, release.set).start()
    runner.stop(timeout=0.1)
    assert jobs.get(job_id)["status"] == "succeeded"


def test_the_last_report_sees_a_cancel_at_once(jobs, start_runner):
    started, decided = threading.Event(), queue.Queue()

    def execute(job, report):
        report(progress(1), HISTORY)  # written: the next write is due in 0.25 s
        started.set()
        time.sleep(0.1)  # the cancel lands here
        decided.put(report(progress(10), HISTORY, last=True))

    job_id = run_one(jobs, start_runner(execute), started)
    jobs.cancel(job_id)
    assert decided.get(timeout=3.0) is True
    assert jobs.wait(job_id, 3.0)["status"] == "cancelled"


def test_prune_deletes_only_jobs_that_ended_before_the_time(jobs):
    ended = [jobs.create("m", {}, 1)["id"] for _ in range(2)]
    jobs.claim("w", 5)
    jobs.finish(ended[0], "succeeded", {"version": 1})
    jobs.cancel(ended[1])
    running, queued = (jobs.create("m", {}, 1)["id"] for _ in range(2))
    jobs.claim("w", 5)
    assert jobs.prune(utc_iso(time.time() - 60)) == 0  # both ended just now
    assert jobs.prune(utc_iso(time.time() + 1)) == 2
    assert {job["id"] for job in jobs.list()[0]} == {running, queued}
    with pytest.raises(JobNotFound):
        jobs.get(ended[0])


def test_runner_deletes_jobs_past_their_retention(jobs, start_runner):
    old = jobs.create("m", {}, 1)["id"]
    jobs.cancel(old)
    time.sleep(0.05)
    start_runner(lambda job, report: {"name": "m"}, retention_s=0.01)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and jobs.list()[1]:
        time.sleep(0.02)
    assert jobs.list()[1] == 0


class _Flaky(SqliteJobs):
    """The real backend, except for the failures a test switches on."""

    fail_report = fail_prune = False

    def report(self, job_id, progress, history):
        if self.fail_report:
            raise StoreUnavailable("job database unavailable: database is locked")
        return super().report(job_id, progress, history)

    def prune(self, ended_before):
        if self.fail_prune:
            raise RuntimeError("a bug")
        return super().prune(ended_before)


def test_no_model_is_saved_when_the_last_report_cannot_be_written(tmp_path):
    jobs, saved = _Flaky(tmp_path / "jobs.sqlite3"), []

    def execute(job, report):
        jobs.fail_report = True  # the database is locked when the job asks to save
        if not report(progress(10), HISTORY, last=True):
            saved.append(job["id"])
        jobs.fail_report = False
        return None

    runner = JobRunner(jobs, execute, max_running=1, timeout_s=10.0, poll_s=0.05).start()
    try:
        job = jobs.wait(run_one(jobs, runner), 3.0)
    finally:
        runner.stop(timeout=2.0)
    assert saved == []
    assert (job["status"], job["error"]) == ("failed", runner_module.UNCONFIRMED)


def test_a_failing_prune_does_not_stop_the_runner(tmp_path, caplog):
    jobs = _Flaky(tmp_path / "jobs.sqlite3")
    jobs.fail_prune = True
    runner = JobRunner(jobs, lambda job, report: {"name": "m"}, max_running=1, timeout_s=10.0,
                       retention_s=3600.0, poll_s=0.05).start()
    try:
        job = jobs.wait(run_one(jobs, runner), 3.0)
    finally:
        runner.stop(timeout=2.0)
    assert job["status"] == "succeeded"
    assert "cannot delete old training jobs" in caplog.text


@pytest.mark.parametrize("value", ["inf", "nan", "0", "59", "1e20"])
def test_job_retention_must_be_a_sane_duration(monkeypatch, value):
    from pydantic import ValidationError

    from service.settings import Settings

    monkeypatch.setenv("NNSERVE_JOB_RETENTION_S", value)
    with pytest.raises(ValidationError, match="job_retention_s"):
        Settings()
