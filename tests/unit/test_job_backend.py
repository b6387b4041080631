"""The job backend interface, run against every backend; then what only SQLite does."""

import multiprocessing
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta

import pytest

from service.errors import JobFinished, JobNotFound, LeaseLost, StoreUnavailable
from service.jobs import FIELDS, SqliteJobs, worker_id
from service.jobs.processes import host_id
from service.jobs.records import MAX_SNAPSHOT_CHARS
from service.jobs.sqlite import LEAVE_SAVING
from service.timestamps import utc_iso

from .jobkit import HISTORY, progress

# Forked children inherit the test module, so their targets need no pickling or re-import.
FORK = multiprocessing.get_context("fork")


def claim(jobs, worker=None, max_running=9):
    """Return the job claimed by worker (default: this process), or None."""
    return jobs.claim(worker or worker_id(), max_running)


# ----- the interface: every backend -----


def test_create_returns_a_queued_job_with_every_field(jobs):
    request = {"name": "xor", "architecture": {"hidden": [4, 3]}, "points": [[0.5, -1.0]]}
    job = jobs.create("xor", request, epochs=200)
    assert set(FIELDS) <= set(job) and len(job["id"]) == 32
    assert job["status"] == "queued" and job["model"] == "xor" and job["request"] == request
    assert job["progress"] == {"epoch": 0, "epochs": 200, "loss": None, "accuracy": None,
                               "elapsed_s": 0.0}
    assert job["history"] == {"epoch": [], "loss": [], "accuracy": []}
    assert (job["result"], job["error"], job["started_at"], job["finished_at"]) == (None,) * 4
    assert job["worker"] is None and job["lease"] is None and job["cancel_requested"] is False
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
    assert claim(jobs, max_running=1)["id"] == ids[0]  # the oldest queued
    page, total = jobs.list(status="running")
    assert [j["id"] for j in page] == [ids[0]] and total == 1
    assert jobs.list(status="queued", model="b")[1] == 2
    assert jobs.list(offset=5) == ([], 5)
    assert jobs.counts() == {"queued": 4, "running": 1, "succeeded": 0, "failed": 0,
                             "cancelled": 0}


def test_a_kind_of_job_is_listed_apart_and_claimed_as_any(jobs):
    training = jobs.create("m", {"n": 0}, 10)["id"]
    sweep = jobs.create("m", {"grid": {}}, 10, kind="sweep")
    assert sweep["kind"] == "sweep" and jobs.get(training)["kind"] == "training"
    assert [j["id"] for j in jobs.list()[0]] == [training]  # the default kind: trainings
    page, total = jobs.list(kind="sweep")
    assert [j["id"] for j in page] == [sweep["id"]] and total == 1
    assert jobs.list(kind=None)[1] == 2
    assert jobs.counts()["queued"] == 2
    assert claim(jobs, max_running=2)["id"] == training
    assert claim(jobs, max_running=2)["id"] == sweep["id"]
    with pytest.raises(ValueError, match="kind"):
        jobs.create("m", {}, 1, kind="nope")


def test_report_round_trips_progress_and_history_as_json(jobs):
    job_id = jobs.create("xor", {}, 3)["id"]
    lease = claim(jobs)["lease"]
    reported = {"epoch": 2, "epochs": 3, "loss": 0.125, "accuracy": 0.75, "elapsed_s": 0.5}
    history = {"epoch": [0, 1, 2], "loss": [0.5, 0.25, 0.125], "accuracy": [0.5, float("nan"), 1]}
    assert jobs.report(job_id, lease, reported, history) is False
    job = jobs.get(job_id)
    assert job["progress"] == reported
    assert job["history"] == {**history, "accuracy": [0.5, None, 1]}  # JSON has no NaN
    assert job["heartbeat_at"] >= job["started_at"]


def test_claim_takes_the_oldest_job_while_a_slot_is_free(jobs):
    a, b, c = (jobs.create("m", {}, 1)["id"] for _ in range(3))
    me = worker_id()
    first = jobs.claim(me, max_running=2)
    assert first["id"] == a
    second = jobs.claim(me, max_running=2)
    assert (second["id"], second["status"], second["worker"]) == (b, "running", me)
    assert second["started_at"] is not None
    assert jobs.claim(me, max_running=2) is None
    assert jobs.finish(a, first["lease"], "succeeded", result={"name": "m"})
    assert jobs.claim(me, max_running=2)["id"] == c
    assert jobs.claim(me, max_running=9) is None  # nothing left queued


def test_finish_never_overwrites_an_ended_job(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    assert jobs.finish(job_id, None, "succeeded") is False  # a queued job can only be cancelled
    lease = claim(jobs, max_running=1)["lease"]
    assert jobs.finish(job_id, lease, "succeeded", result={"version": 3}) is True
    assert jobs.finish(job_id, lease, "failed", error="late") is False
    assert (jobs.get(job_id)["status"], jobs.get(job_id)["error"]) == ("succeeded", None)
    with pytest.raises(ValueError, match="final status"):
        jobs.finish(job_id, lease, "running")


def test_reports_and_ends_are_fenced_by_the_lease_of_each_claim(jobs):
    job_id, other_id = (jobs.create("m", {}, 1)["id"] for _ in range(2))
    lease, other = claim(jobs)["lease"], claim(jobs)["lease"]  # one worker, two claims
    assert lease != other
    assert jobs.report(job_id, other, progress(1), HISTORY) is True  # stop: not this lease
    assert jobs.finish(job_id, other, "failed", error="late") is False
    job = jobs.get(job_id)
    assert (job["status"], job["progress"]["epoch"]) == ("running", 0)
    assert jobs.report(job_id, lease, progress(1), HISTORY) is False
    assert jobs.finish(job_id, lease, "succeeded") is True


def test_a_lost_workers_lease_is_refused_after_its_job_was_reaped(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    leases = lose(jobs, job_id)
    assert jobs.get(job_id)["error"] == "worker lost"
    for lease in leases:
        assert jobs.report(job_id, lease, progress(1), HISTORY) is True
        assert jobs.finish(job_id, lease, "succeeded") is False
    assert jobs.get(job_id)["status"] == "failed"


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
        backend.finish(job["id"], job["lease"], "succeeded")
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
    assert claim(jobs, max_running=2) is None
    with pytest.raises(JobFinished, match="already cancelled"):
        jobs.cancel(job_id)


def test_cancel_of_a_running_job_asks_its_next_report_to_stop(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs)["lease"]
    job = jobs.cancel(job_id)
    assert (job["status"], job["cancel_requested"]) == ("running", True)
    assert jobs.report(job_id, lease, progress(1), HISTORY) is True
    assert jobs.finish(job_id, lease, "cancelled") is True


def test_a_sweep_saving_a_group_says_to_cancel_again_and_when(jobs):
    # its 409 said "training job ... already finished training", and a client took the
    # sweep for done while it trained and saved every other group
    sweep_id = jobs.create("m", {}, 1, kind="sweep")["id"]
    lease = claim(jobs)["lease"]
    assert jobs.begin_save(sweep_id, lease)
    with pytest.raises(JobFinished) as caught:
        jobs.cancel(sweep_id)
    assert caught.value.detail == (f"sweep {sweep_id!r} is saving a group of its trials: "
                                   "cancel again in a moment to stop the rest")
    assert caught.value.headers == {"Retry-After": "1"}
    jobs.end_save(sweep_id, lease)  # the group saved: the next cancel wins
    assert jobs.cancel(sweep_id)["cancel_requested"] is True


def test_cancel_of_an_ended_job_raises_job_finished(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs, max_running=1)["lease"]
    jobs.finish(job_id, lease, "succeeded", result={"version": 1})
    with pytest.raises(JobFinished, match="already succeeded"):
        jobs.cancel(job_id)
    assert jobs.get(job_id)["status"] == "succeeded"
    with pytest.raises(JobNotFound):
        jobs.cancel("nope")


def test_begin_save_and_cancel_are_exclusive(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs)["lease"]
    assert jobs.begin_save(job_id, "not-the-lease") is False
    assert jobs.begin_save(job_id, lease) is True
    assert jobs.get(job_id)["saving"] is True
    with pytest.raises(JobFinished, match="saving its model"):
        jobs.cancel(job_id)  # too late: the model is being saved
    assert jobs.get(job_id)["cancel_requested"] is False
    assert jobs.finish(job_id, lease, "succeeded", result={"version": 1}) is True


def test_end_save_lets_a_cancel_win_again_and_the_fence_refuse(jobs):
    job_id = jobs.create("m", {}, 1, kind="sweep")["id"]
    lease = claim(jobs)["lease"]
    assert jobs.begin_save(job_id, lease) is True  # a sweep saves a group of trials
    jobs.end_save(job_id, "not-the-lease")
    assert jobs.get(job_id)["saving"] is True
    jobs.end_save(job_id, lease)  # and trains the next group
    assert jobs.get(job_id)["saving"] is False and jobs.holds(job_id, lease) is False
    assert jobs.cancel(job_id)["cancel_requested"] is True
    assert jobs.begin_save(job_id, lease) is False


def test_a_cancel_first_makes_begin_save_refuse(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs)["lease"]
    jobs.cancel(job_id)
    assert jobs.begin_save(job_id, lease) is False
    assert jobs.get(job_id)["saving"] is False


def test_a_fence_holds_only_for_the_saving_job_under_its_lease(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs)["lease"]
    fence, stale = jobs.fence(job_id, lease), jobs.fence(job_id, "not-the-lease")
    assert jobs.holds(job_id, lease) is False  # not saving yet
    with pytest.raises(LeaseLost, match=f"training job '{job_id}' no longer holds its lease"):
        fence.hold()
    assert jobs.begin_save(job_id, lease) is True
    assert fence.hold() is None and jobs.holds(job_id, lease) is True
    with pytest.raises(LeaseLost):
        stale.hold()
    assert jobs.finish(job_id, lease, "succeeded") is True
    with pytest.raises(LeaseLost):
        fence.hold()


def race_cancel_and_save(path, job_id, lease, start, results):
    """In another process: begin_save or cancel, whichever this process is told to do."""
    backend = SqliteJobs(path)
    start.wait()
    if lease is not None:
        results.put(("save", backend.begin_save(job_id, lease)))
        return
    try:
        backend.cancel(job_id)
        results.put(("cancel", True))
    except JobFinished:
        results.put(("cancel", False))


def test_begin_save_and_cancel_in_two_processes_have_exactly_one_winner(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    jobs = SqliteJobs(path)
    for _ in range(8):
        job_id = jobs.create("m", {}, 1)["id"]
        lease = claim(jobs)["lease"]
        start, results = FORK.Event(), FORK.Queue()
        procs = [FORK.Process(target=race_cancel_and_save, args=(path, job_id, who, start,
                                                                  results))
                 for who in (lease, None)]
        for proc in procs:
            proc.start()
        start.set()
        outcome = dict(results.get(timeout=10) for _ in procs)
        for proc in procs:
            proc.join(10)
        assert outcome["save"] != outcome["cancel"], outcome
        jobs.finish(job_id, lease, "cancelled" if outcome["cancel"] else "succeeded")


POINTS = {"kind": "points", "points": [[0.0, 1.0]] * 1000, "labels": [0, 1] * 500}


def test_lists_answer_summaries_unless_full(jobs):
    request = {"model": "m", "dataset": POINTS, "training": {"epochs": 3}}
    job_id = jobs.create("m", request, 3)["id"]
    (summary,), total = jobs.list()
    assert total == 1 and "history" not in summary
    assert summary["request"] == {"model": "m", "dataset": {"kind": "points", "n": 1000},
                                  "training": {"epochs": 3}}
    assert summary["id"] == job_id and summary["progress"]["epochs"] == 3
    (full,), _ = jobs.list(full=True)
    assert full == jobs.get(job_id) and full["request"] == request


def test_summary_is_the_one_job_as_lists_show_it_and_reads_lost_jobs_as_failed(jobs):
    request = {"model": "m", "dataset": POINTS, "training": {"epochs": 3}}
    job_id = jobs.create("m", request, 3)["id"]
    assert jobs.summary(job_id) == jobs.list()[0][0]
    lease = claim(jobs)["lease"]
    jobs.report(job_id, lease, progress(2, 3), HISTORY)
    summary = jobs.summary(job_id)
    assert "history" not in summary and summary["request"]["dataset"] == {"kind": "points",
                                                                          "n": 1000}
    assert summary == {**jobs.list()[0][0]} and summary["progress"] == progress(2, 3)
    lost = jobs.create("m", {}, 1)["id"]
    for _ in range(runs_of_a_lost_job(jobs)):
        claim(jobs, dead_worker())
        jobs.summary(lost)  # reaped as get() reads it: never left running
    jobs.finish(job_id, lease, "succeeded")
    assert jobs.summary(lost)["status"] == "failed"
    assert jobs.summary(lost)["error"] == "worker lost"
    with pytest.raises(JobNotFound, match="nope"):
        jobs.summary("nope")


def test_report_keeps_the_latest_snapshot_outside_the_job(jobs):
    job_id = jobs.create("m", {}, 3)["id"]
    assert jobs.snapshot(job_id) is None
    lease = claim(jobs)["lease"]
    first, second = {"epoch": 1, "theta": "AAAA"}, {"epoch": 2, "theta": "BBBB", "x": [0.5]}
    assert jobs.report(job_id, lease, progress(1, 3), HISTORY, first) is False
    assert jobs.snapshot(job_id) == first
    assert "snapshot" not in jobs.get(job_id) and "snapshot" not in jobs.summary(job_id)
    jobs.report(job_id, lease, progress(2, 3), HISTORY)  # None keeps the last
    assert jobs.snapshot(job_id) == first and jobs.get(job_id)["progress"]["epoch"] == 2
    jobs.report(job_id, lease, progress(2, 3), HISTORY, second)
    assert jobs.snapshot(job_id) == second
    assert jobs.report(job_id, "not-the-lease", progress(3, 3), HISTORY, first) is True
    assert jobs.snapshot(job_id) == second  # fenced, as the progress is
    with pytest.raises(ValueError, match="snapshot"):
        jobs.report(job_id, lease, progress(3, 3), HISTORY, {"theta": "A" * MAX_SNAPSHOT_CHARS})
    assert jobs.snapshot(job_id) == second and jobs.get(job_id)["progress"]["epoch"] == 2
    with pytest.raises(JobNotFound, match="nope"):
        jobs.snapshot("nope")


def test_summary_and_snapshot_read_no_other_column(jobs):
    """A summary reads neither the request nor the history; a snapshot nothing else: shown
    by spoiling those columns, which get() then cannot decode."""
    job_id = jobs.create("m", {"dataset": POINTS}, 3)["id"]
    lease = claim(jobs)["lease"]
    jobs.report(job_id, lease, progress(1, 3), HISTORY, {"epoch": 1})
    spoil(jobs, "UPDATE jobs SET request = 'x', history = 'x', progress = 'x' WHERE id = ?",
          job_id)
    with pytest.raises(ValueError):
        jobs.get(job_id)
    assert jobs.snapshot(job_id) == {"epoch": 1}
    spoil(jobs, "UPDATE jobs SET progress = '{}', snapshot = 'x' WHERE id = ?", job_id)
    assert jobs.summary(job_id)["progress"] == {}


def spoil(jobs, sql, job_id):
    """Run one UPDATE on the backend's own database, under the test's control."""
    if isinstance(jobs, SqliteJobs):
        with sqlite3.connect(jobs.path) as conn:
            conn.execute(sql, (job_id,))
    else:
        with jobs.db.connection() as conn:
            conn.execute(sql.replace("?", "%s"), (job_id,))


def dead_worker():
    """Return the worker id of a process of this host that has ended."""
    gone = FORK.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    return f"{host_id()}:{gone.pid}:1"


def runs_of_a_lost_job(jobs):
    """Return how many times the backend runs a job whose worker is lost: once on SQLite
    (one host: its dead worker's job fails), twice on PostgreSQL (once more, elsewhere)."""
    return 2 if type(jobs).__name__ == "PgJobs" else 1


def lose(jobs, job_id, max_running=9):
    """Have job_id claimed by workers of this host that have ended until the backend gives
    up on it (reads reap it); return the leases they held."""
    leases = []
    for attempt in range(1, runs_of_a_lost_job(jobs) + 1):
        job = claim(jobs, dead_worker(), max_running)
        assert (job["id"], job["attempt"]) == (job_id, attempt)
        leases.append(job["lease"])
        expected = "failed" if attempt == runs_of_a_lost_job(jobs) else "queued"
        assert jobs.get(job_id)["status"] == expected  # the read reaped it
    return leases


def test_claim_frees_the_slot_held_by_a_dead_worker(jobs):
    lost = jobs.create("m", {}, 1)["id"]
    claim(jobs, dead_worker(), max_running=1)
    waiting = jobs.create("m", {}, 1)["id"]
    expected = lost if runs_of_a_lost_job(jobs) > 1 else waiting  # queued again: the oldest
    assert claim(jobs, max_running=1)["id"] == expected


def test_a_dead_workers_job_runs_once_more_where_the_backend_runs_lost_jobs_again(jobs):
    # one rule for a lost job on PostgreSQL, whoever sees it lost: a host restarted after a
    # crash keeps its host id, and its start-up reap failed its old jobs at once, where
    # another host (seeing their leases expire) would have run them again
    job_id = jobs.create("m", {}, 1)["id"]
    lose(jobs, job_id)
    job = jobs.get(job_id)
    assert (job["status"], job["error"], job["attempt"]) == ("failed", "worker lost",
                                                             runs_of_a_lost_job(jobs))


def test_a_lost_job_asked_to_cancel_ends_cancelled_not_run_again(jobs):
    # the cancel was answered 200 ("asking it to stop"); its worker then died: claimed
    # again, it would train until its first report only to be told
    job_id = jobs.create("m", {}, 1)["id"]
    claim(jobs, dead_worker())
    jobs.cancel(job_id)
    job = jobs.get(job_id)
    assert (job["status"], job["error"], job["attempt"]) == ("cancelled", None, 1)
    assert claim(jobs) is None


def test_recover_ends_the_jobs_of_workers_gone(jobs):
    gone, alive = (jobs.create(name, {}, 1)["id"] for name in ("gone", "alive"))
    claim(jobs, dead_worker())
    claim(jobs)
    if runs_of_a_lost_job(jobs) > 1:  # queued again (not failed), and run by the next claim
        assert jobs.recover() == []
        assert jobs.get(gone)["status"] == "queued"
        claim(jobs, dead_worker())
    assert jobs.recover() == [gone]
    assert (jobs.get(gone)["status"], jobs.get(gone)["error"]) == ("failed", "worker lost")
    assert jobs.get(alive)["status"] == "running"


def test_wait_returns_the_job_as_it_stands_after_the_timeout(jobs):
    job_id = jobs.create("m", {}, 1)["id"]
    start = time.monotonic()
    assert jobs.wait(job_id, 0.1)["status"] == "queued"
    assert 0.1 <= time.monotonic() - start < 0.5


def test_prune_deletes_only_jobs_that_ended_before_the_time(jobs):
    ended = [jobs.create("m", {}, 1)["id"] for _ in range(2)]
    jobs.finish(ended[0], claim(jobs)["lease"], "succeeded", {"version": 1})
    jobs.cancel(ended[1])
    running, queued = (jobs.create("m", {}, 1)["id"] for _ in range(2))
    claim(jobs)
    assert jobs.prune(utc_iso(time.time() - 60)) == 0  # both ended just now
    assert jobs.prune(utc_iso(time.time() + 1)) == 2
    assert {job["id"] for job in jobs.list()[0]} == {running, queued}
    with pytest.raises(JobNotFound):
        jobs.get(ended[0])


def test_ping_answers_when_the_backend_is_usable(jobs):
    assert jobs.ping() is None


# ----- SQLite -----


def claim_and_hang(path, claimed):
    """Child process: claim one job, say which, and run until killed."""
    claimed.put(SqliteJobs(path).claim(worker_id(), max_running=1)["id"])
    time.sleep(60)


@pytest.fixture
def sqlite_jobs(tmp_path):
    return SqliteJobs(tmp_path / "jobs.sqlite3")


def test_job_of_a_killed_process_fails_with_worker_lost(sqlite_jobs):
    jobs = sqlite_jobs
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


def test_reap_fails_jobs_of_dead_pids_reused_pids_and_stale_heartbeats(tmp_path):
    jobs = SqliteJobs(tmp_path / "jobs.sqlite3", stale_s=0.3)
    workers = {"alive": worker_id(), "dead": dead_worker(),
               "reused": f"{host_id()}:{os.getpid()}:1", "elsewhere": "otherhost:1:1"}
    hooked = jobs.create("m", {}, 1)["id"]
    jobs.claim("policy:gone", max_running=9)
    assert jobs.reap(is_alive=lambda worker: worker != "policy:gone") == [hooked]
    ids, leases = {}, {}
    for name, worker in workers.items():
        ids[name] = jobs.create(name, {}, 1)["id"]
        leases[name] = jobs.claim(worker, max_running=9)["lease"]
    assert sorted(jobs.recover()) == sorted([ids["dead"], ids["reused"]])
    time.sleep(0.35)
    jobs.heartbeat(ids["alive"], leases["alive"])
    assert jobs.reap() == [ids["elsewhere"]]  # another host: only its heartbeat tells
    assert jobs.get(ids["alive"])["status"] == "running"
    assert jobs.get(ids["elsewhere"])["error"] == "worker lost"


def test_jobs_survive_reopening_the_database(tmp_path):
    path = tmp_path / "store" / ".jobs.sqlite3"
    first = SqliteJobs(path)
    done = first.create("xor", {"epochs": 2}, 2)["id"]
    lease = first.claim(worker_id(), max_running=1)["lease"]
    first.report(done, lease, progress(2, 2), HISTORY)
    first.finish(done, lease, "succeeded", result={"name": "xor", "version": 1, "metrics": {}})
    first.create("and", {"epochs": 5}, 5)
    again = SqliteJobs(path)
    assert again.list() == first.list() and again.list()[1] == 2
    assert again.get(done)["result"] == {"name": "xor", "version": 1, "metrics": {}}
    assert again.get(done)["progress"]["epoch"] == 2


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


def test_a_database_made_before_leases_gains_the_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_BEFORE_LEASES)
    old.close()
    old = sqlite3.connect(path)
    old.execute("INSERT INTO jobs (id, model, status, request, progress, history, created_at)"
                " VALUES ('old', 'm', 'succeeded', ?, '{}', '{}', '2026-01-01T00:00:00Z')",
                ('{"model": "m", "dataset": {"kind": "points", "points": [[0, 1]],'
                 ' "labels": [1]}}',))
    old.commit()
    old.close()
    jobs = SqliteJobs(path)
    job_id = jobs.create("m", {}, 1)["id"]
    lease = claim(jobs)["lease"]
    assert lease and jobs.begin_save(job_id, lease) and jobs.finish(job_id, lease, "succeeded")
    old_summary = jobs.list(status="succeeded", full=False)[0][-1]
    assert old_summary["request"] == {"model": "m", "dataset": {"kind": "points", "n": 1}}


SCHEMA_BEFORE_LEASES = """
CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, progress TEXT NOT NULL,
    history TEXT NOT NULL, result TEXT, error TEXT, created_at TEXT NOT NULL, started_at TEXT,
    finished_at TEXT, worker TEXT, heartbeat_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0);
"""


def test_a_job_lost_after_its_save_landed_ends_succeeded_with_that_version(tmp_path, trained):
    from functools import partial

    from service.core import saved_result
    from service.store import FileStore

    from .storekit import save

    store = FileStore(tmp_path / "store")
    jobs = SqliteJobs(tmp_path / "jobs.db", saved=partial(saved_result, store))
    master = SqliteJobs(tmp_path / "jobs.db", saved=LEAVE_SAVING)  # gunicorn's: no store
    ids = [jobs.create("m", {}, 1)["id"] for _ in range(3)]
    leases = [claim(jobs, worker="pid:gone")["lease"] for _ in ids]
    for job_id, lease in zip(ids[:2], leases[:2], strict=True):
        assert jobs.begin_save(job_id, lease)
    save(store, "m", trained)  # another's version of the model, then the first job's
    version = save(store, "m", trained, job=ids[0])["version"]  # ... and the worker dies
    dead = lambda worker: False  # noqa: E731
    assert master.reap(is_alive=dead) == [ids[2]]  # not saving: failed "worker lost"
    assert [jobs.get(i)["status"] for i in ids] == ["running", "running", "failed"]
    assert sorted(jobs.reap(is_alive=dead)) == sorted(ids[:2])
    first, second = jobs.get(ids[0]), jobs.get(ids[1])
    assert first["status"] == "succeeded" and first["error"] is None
    assert first["result"] == {"name": "m", "version": version,
                               "metrics": store.meta("m", version)["metrics"]}
    assert second["status"] == "failed" and second["error"] == "worker lost"  # no version
    assert store.meta("m", version)["job"] == ids[0]
    plain = SqliteJobs(tmp_path / "other.db")  # no store at all: a lost saving job fails
    job_id = plain.create("m", {}, 1)["id"]
    assert plain.begin_save(job_id, claim(plain, worker="pid:gone")["lease"])
    assert plain.reap(is_alive=dead) == [job_id]
    assert plain.get(job_id)["error"] == "worker lost"


def test_a_lost_saving_job_whose_store_cannot_answer_waits_for_the_next_reap(tmp_path,
                                                                             trained):
    # the third answer of saved(): neither "this version" nor "none" but "cannot say now"
    # (its folder cannot be read: here a symbolic link loop, ELOOP): failing it "worker
    # lost" would leave its version beside a failed job, so it stays running until a reap
    # can tell
    from functools import partial

    from service.core import saved_result
    from service.store import FileStore

    from .storekit import save

    store = FileStore(tmp_path / "store")
    jobs = SqliteJobs(tmp_path / "jobs.db", saved=partial(saved_result, store))
    job_id = jobs.create("m", {}, 1)["id"]
    assert jobs.begin_save(job_id, claim(jobs, worker="pid:gone")["lease"])
    version = save(store, "m", trained, job=job_id)["version"]
    folder = tmp_path / "store" / "m"
    folder.rename(tmp_path / "away")
    folder.symlink_to(folder)  # the store cannot list the model now
    dead = lambda worker: False  # noqa: E731
    assert jobs.reap(is_alive=dead) == []
    assert jobs.get(job_id)["status"] == "running"
    folder.unlink()
    (tmp_path / "away").rename(folder)
    assert jobs.reap(is_alive=dead) == [job_id]
    job = jobs.get(job_id)
    assert job["status"] == "succeeded" and job["result"]["version"] == version
