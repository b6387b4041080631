"""What PgJobs adds over the interface: a job whose lease expired (its host gone or
paused) is claimed again once, as attempt 2, then failed "worker lost"; the late worker's
lease is refused."""

import time

from service.jobs.postgres import PgJobs

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
