"""What PgJobs adds over the interface: a job whose lease expired (its host gone or
paused) is claimed again once, as attempt 2, then failed "worker lost"; the late worker's
lease is refused."""

import threading
import time

import psycopg
import pytest

from service.jobs import JobRunner
from service.jobs.postgres import CHANNEL, PgJobs
from service.jobs.runner import BACKSTOP_POLL_S
from service.pg import Database
from service.pg.listener import Listener

OTHER_HOST = "elsewhere:1:1"  # a worker id of another host: only its lease can tell


def test_an_expired_lease_is_claimed_again_once_then_fails_worker_lost(pg_database):
    jobs = PgJobs(pg_database, lease_s=0.2)
    job_id = jobs.create("m", {}, 1)["id"]
    first = jobs.claim(OTHER_HOST, max_running=1)
    assert (first["id"], first["attempt"]) == (job_id, 1)
    assert jobs.claim(OTHER_HOST, max_running=1) is None  # the slot is held by the lease
    time.sleep(0.3)
    second = jobs.claim(OTHER_HOST, max_running=1)
    assert (second["id"], second["attempt"]) == (job_id, 2)
    assert jobs.report(job_id, first["lease"], {"epoch": 1}, {}) is True  # fenced: stop
    assert jobs.finish(job_id, first["lease"], "succeeded") is False
    time.sleep(0.3)
    job = jobs.get(job_id)
    assert (job["status"], job["error"], job["attempt"]) == ("failed", "worker lost", 2)


def test_a_lease_that_expires_during_a_reap_is_queued_again_never_failed(pg_database):
    # A reap asks "expired? queue it again" and then "expired and no attempt left? fail it";
    # a lease that ran out between the two questions was failed on its first attempt.
    # Reaped back to back, each lease expires at a random point of that cycle.
    jobs = PgJobs(pg_database, lease_s=0.05)
    for _ in range(20):
        job_id = jobs.create("m", {}, 1)["id"]
        assert jobs.claim(OTHER_HOST, max_running=1)["id"] == job_id
        while jobs.get(job_id)["status"] == "running":
            assert jobs.reap() == []
        job = jobs.get(job_id)
        assert (job["status"], job["error"], job["attempt"]) == ("queued", None, 1), job
        jobs.cancel(job_id)


def test_a_renewed_lease_keeps_its_job(pg_database):
    jobs = PgJobs(pg_database, lease_s=0.3)
    job_id = jobs.create("m", {}, 1)["id"]
    lease = jobs.claim(OTHER_HOST, max_running=1)["lease"]
    for _ in range(4):
        time.sleep(0.15)
        jobs.heartbeat(job_id, lease)
    job = jobs.get(job_id)
    assert (job["status"], job["attempt"]) == ("running", 1)
    assert jobs.finish(job_id, lease, "succeeded") is True


@pytest.fixture
def listener(pg_database):
    """Return make(tick_s) -> a Listener of the test's database; all stopped after."""
    listeners = []

    def make(tick_s):
        listeners.append(Listener(pg_database.url, tick_s=tick_s))
        return listeners[-1]

    yield make
    for one in listeners:
        one.stop()


def woken_by(jobs, listener):
    """Return an Event that jobs.on_claimable sets, once listening (its first recheck done)."""
    woken = threading.Event()
    assert jobs.on_claimable(woken.set) is True
    assert listener.wait_listening(CHANNEL, 5) and woken.wait(2)  # the recheck at the start
    woken.clear()
    return woken


def test_a_job_created_or_ended_by_another_process_wakes_the_runners(pg_database, listener):
    elsewhere = PgJobs(Database(pg_database.url, max_size=1))  # another process's view
    watched = listener(tick_s=60)  # no backstop within the test: only a NOTIFY wakes
    woken = woken_by(PgJobs(pg_database, listener=watched), watched)
    job_id = elsewhere.create("m", {}, 1)["id"]
    assert woken.wait(1)
    woken.clear()
    lease = elsewhere.claim(OTHER_HOST, max_running=1)["lease"]
    assert not woken.wait(0.3)  # a claim frees nothing
    assert elsewhere.finish(job_id, lease, "succeeded")
    assert woken.wait(1)  # a slot is free
    elsewhere.db.close()


def test_the_backstop_wakes_the_runners_on_a_lease_that_expired_silently(pg_database,
                                                                         listener):
    jobs = PgJobs(pg_database, lease_s=2.0)
    jobs.create("m", {}, 1)
    claimed_at = time.monotonic()
    jobs.claim(OTHER_HOST, max_running=1)  # its host dies now: nothing is ever sent
    watched = listener(tick_s=0.1)
    woken = woken_by(PgJobs(pg_database, listener=watched), watched)
    assert not woken.wait(claimed_at + 1.5 - time.monotonic())  # leased: nothing to claim
    assert woken.wait(2)  # the lease has expired: a tick finds it


def test_a_runner_woken_by_notifications_claims_at_once_and_polls_rarely(pg_database,
                                                                         listener):
    ran = threading.Event()
    runner = JobRunner(PgJobs(pg_database, listener=listener(tick_s=60)),
                       lambda job, report: ran.set(), max_running=1, timeout_s=10)
    runner.start()
    try:
        assert runner.poll_s == BACKSTOP_POLL_S
        time.sleep(0.5)  # it has looked once, found nothing, and waits
        PgJobs(pg_database).create("m", {}, 1)  # not through this runner: no wake() call
        assert ran.wait(1.5)
    finally:
        runner.stop(timeout=2)


def test_jobs_work_on_a_sql_ascii_database(pg_cluster):
    """initdb without a locale makes SQL_ASCII databases, where psycopg's text is bytes
    unless the client asks for UTF8 (the claim failed: text = bytea)."""
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE ascii_jobs ENCODING 'SQL_ASCII' LC_COLLATE 'C'"
                     " LC_CTYPE 'C' TEMPLATE template0")
    db = Database(pg_cluster.url("ascii_jobs"), max_size=2)
    db.migrate()
    try:
        jobs = PgJobs(db)
        job_id = jobs.create("m", {"note": "naïve"}, 1)["id"]
        claimed = jobs.claim(OTHER_HOST, max_running=1)
        assert (claimed["id"], claimed["request"]) == (job_id, {"note": "naïve"})
        assert jobs.finish(job_id, claimed["lease"], "succeeded")
    finally:
        db.close()
