"""PostgreSQL down and back under a running nnserve: /readyz answers 503 naming the database
while predictions of loaded models go on; after `pg_ctl -m immediate` (stop, then restart)
nnserve reconnects by itself, its job runners run jobs again, and no succeeded job is lost."""

import time

import pytest
import requests

from tests.pgkit import Cluster

pytestmark = pytest.mark.e2e

XOR = {"dataset": {"kind": "xor"}, "training": {"epochs": 300}}
POINTS = {"points": [[0.1, 0.9], [0.5, 0.5]]}


@pytest.fixture
def cluster():
    """A private PostgreSQL server: this test crashes it."""
    cluster = Cluster()
    yield cluster
    cluster.stop()


def train(url, name):
    r = requests.post(f"{url}/v1/trainings", params={"wait": 30}, json={"model": name, **XOR},
                      timeout=40)
    assert r.status_code in (201, 202), r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    return job


def ready(url, timeout):
    """Return /readyz's answer once it is 200, or the last one after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{url}/readyz", timeout=10)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def warm(srv, name, timeout=15, alias=None):
    """Have every worker of srv load the model (and read its aliases, with alias): kept-alive
    sessions, each held open while the next connects, until every worker has answered one
    (the workers spread connections evenly, DEPLOY.md: once all have booted, the next
    session reaches another worker)."""
    sessions, answered, workers = [], set(), srv.worker_pids()
    deadline = time.monotonic() + timeout
    path = f"/v1/models/{name}" + (f"/aliases/{alias}" if alias else "") + "/predict"
    try:
        while answered != workers and time.monotonic() < deadline:
            sessions.append(requests.Session())
            r = sessions[-1].post(f"{srv.url}{path}", json=POINTS, timeout=10)
            assert r.status_code == 200, r.text
            answered |= set(srv.pids_of([r.headers["X-Request-ID"]]).values())
            time.sleep(0.05)  # a worker still booting (its imports) answers nothing yet
        assert answered == workers, f"{len(sessions)} sessions reached only {answered}"
    finally:
        for session in sessions:
            session.close()


def test_nnserve_rides_out_a_database_crash(cluster, start_server, tmp_path):
    srv = start_server(tmp_path / "store", workers=2, NNSERVE_DATABASE_URL=cluster.url())
    before = train(srv.url, "xor")
    version = before["result"]["version"]
    assert requests.put(f"{srv.url}/v1/models/xor/aliases/prod", json={"version": version},
                        timeout=10).status_code == 200
    warm(srv, "xor")
    warm(srv, "xor", alias="prod")

    cluster.crash()
    asked = time.monotonic()
    r = requests.get(f"{srv.url}/readyz", timeout=10)
    assert r.status_code == 503 and r.headers["Content-Type"] == "application/problem+json"
    assert "NNSERVE_DATABASE_URL" in r.json()["detail"] and "jobs" in r.json()["checks"]
    assert time.monotonic() - asked < 1.5  # a readiness probe's timeout is short
    asked = time.monotonic()
    for path in ["/v1/models/xor/predict", "/v1/models/xor/aliases/prod/predict"] * 4:
        r = requests.post(f"{srv.url}{path}", json=POINTS, timeout=10)  # an alias's was a
        assert r.status_code == 200 and r.json()["version"] == version, r.text  # 503 in 5 s
    assert time.monotonic() - asked < 4  # without waiting for the database each time
    r = requests.get(f"{srv.url}/metrics", timeout=20)  # was a 503: no counters at all
    assert r.status_code == 200 and "nnserve_http_requests_total{" in r.text, r.text[:300]
    assert "nnserve_training_jobs_readable 0.0" in r.text
    assert "nnserve_training_jobs{" not in r.text

    cluster.start()  # the same port: nnserve finds it again by itself
    assert ready(srv.url, 15).status_code == 200
    r = requests.get(f"{srv.url}/metrics", timeout=20)
    assert "nnserve_training_jobs_readable 1.0" in r.text and "nnserve_training_jobs{" in r.text
    assert requests.get(f"{srv.url}/v1/trainings/{before['id']}",
                        timeout=10).json()["status"] == "succeeded"
    assert train(srv.url, "after")["status"] == "succeeded"

    cluster.restart()  # a crash and a start, with nothing in between
    assert ready(srv.url, 15).status_code == 200
    for job_id in (before["id"],):
        assert requests.get(f"{srv.url}/v1/trainings/{job_id}",
                            timeout=10).json()["status"] == "succeeded"
    assert train(srv.url, "again")["status"] == "succeeded"


def test_a_wait_the_database_drops_answers_the_job_it_created(cluster, start_server,
                                                               tmp_path):
    # the job was committed, then its ?wait met the database gone: that was a 503 without
    # the job's id, and a client retrying it trained and saved the model twice
    import threading

    srv = start_server(tmp_path / "store", workers=2, NNSERVE_DATABASE_URL=cluster.url())
    long_job = {"model": "long", "dataset": {"kind": "spiral", "n": 200},
                "network": {"hidden": [8, 8]}, "training": {"epochs": 100000, "starts": 1}}
    answer = {}
    waiter = threading.Thread(target=lambda: answer.update(r=requests.post(
        f"{srv.url}/v1/trainings", params={"wait": 6}, json=long_job, timeout=30)))
    waiter.start()
    deadline = time.monotonic() + 10
    while not requests.get(f"{srv.url}/v1/trainings", timeout=10).json()["total"]:
        assert time.monotonic() < deadline, "the job was never created"
        time.sleep(0.05)
    cluster.crash()
    time.sleep(3)
    cluster.start()
    waiter.join()
    r = answer["r"]
    assert r.status_code in (201, 202), r.text  # 201 had it ended within the wait
    job = r.json()
    assert r.headers["Location"] == f"/v1/trainings/{job['id']}" and job["model"] == "long"
    assert ready(srv.url, 15).status_code == 200
    listed = requests.get(f"{srv.url}/v1/trainings", timeout=10).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]  # the one job, still on record
    requests.delete(f"{srv.url}/v1/trainings/{job['id']}", timeout=10)


def test_an_event_stream_rides_out_a_database_crash(cluster, start_server, tmp_path):
    # the stream's next read met the database gone, raised, and the answer was cut short
    # mid-stream (no end event, an incomplete chunked body) with a traceback in the log
    import threading

    srv = start_server(tmp_path / "store", workers=2, NNSERVE_DATABASE_URL=cluster.url())
    long_job = {"model": "watched", "dataset": {"kind": "spiral", "n": 200},
                "network": {"hidden": [8, 8]}, "training": {"epochs": 100000, "starts": 1}}
    job_id = requests.post(f"{srv.url}/v1/trainings", json=long_job, timeout=10).json()["id"]
    seen, failed = [], []

    def watch():
        try:
            with requests.get(f"{srv.url}/v1/trainings/{job_id}/events", stream=True,
                              headers={"Accept": "text/event-stream"}, timeout=(5, 30)) as r:
                seen.extend(line for line in r.iter_lines(decode_unicode=True)
                            if line.startswith("event:"))
        except requests.RequestException as exc:
            failed.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    deadline = time.monotonic() + 20
    while "event: progress" not in seen:
        assert time.monotonic() < deadline and watcher.is_alive(), (seen, failed)
        time.sleep(0.05)
    cluster.crash()
    time.sleep(7)  # past the 5 s a read waits for a connection
    cluster.start()
    assert ready(srv.url, 15).status_code == 200
    r = requests.delete(f"{srv.url}/v1/trainings/{job_id}", timeout=10)
    assert r.status_code in (200, 409), r.text  # 409: it had ended meanwhile
    watcher.join(30)
    assert not watcher.is_alive() and failed == [], failed
    assert seen[-1] == "event: end", seen[-3:]
    assert "Traceback" not in srv.log_text()


def test_a_worker_respawned_while_the_database_is_down_keeps_the_server_up(
        cluster, start_server, tmp_path):
    # a worker booting during an outage checked the database, failed to boot (exit 3), and
    # gunicorn's master halted the whole server: "Worker failed to boot"
    import os
    import signal

    srv = start_server(tmp_path / "store", workers=2, NNSERVE_DATABASE_URL=cluster.url())
    before = train(srv.url, "xor")
    cluster.crash()
    victim = min(srv.worker_pids())
    os.kill(victim, signal.SIGKILL)  # respawned at once, into the outage
    deadline = time.monotonic() + 30
    while victim in srv.worker_pids() or len(srv.worker_pids()) < 2:
        assert srv.proc.poll() is None, srv.log_text()[-2000:]  # the master halted
        assert time.monotonic() < deadline, "no worker forked in place of the killed one"
        time.sleep(0.1)
    time.sleep(3)  # the new worker boots with the database away
    assert srv.proc.poll() is None, srv.log_text()[-2000:]
    assert requests.get(f"{srv.url}/healthz", timeout=10).status_code == 200
    cluster.start()
    assert ready(srv.url, 20).status_code == 200
    assert requests.get(f"{srv.url}/v1/trainings/{before['id']}",
                        timeout=10).json()["status"] == "succeeded"
    assert train(srv.url, "after")["status"] == "succeeded"
