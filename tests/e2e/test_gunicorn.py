"""nnserve under real gunicorn with several workers: HTTP, curl, worker loss and restarts."""

import json
import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from service.nn import datasets
from service.schemas import Job, PredictResponse

pytestmark = pytest.mark.e2e


def train(url, body, wait=30):
    r = requests.post(f"{url}/v1/trainings", params={"wait": wait, "view": "full"}, json=body,
                      timeout=wait + 10)
    assert r.status_code == (201 if r.json().get("finished_at") else 202), r.text
    return Job.model_validate(r.json())


def poll(url, job_id, until=("succeeded", "failed", "cancelled"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.model_validate(requests.get(f"{url}/v1/trainings/{job_id}", timeout=5).json())
        if job.status in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def curl_json(*args):
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True,
                         text=True, check=True, timeout=30)
    return json.loads(out.stdout)


@pytest.mark.parametrize("dataset", [{"kind": "xor"}, {"kind": "linear", "n": 100, "seed": 3}])
def test_train_by_post_then_poll(server, dataset):
    r = requests.post(f"{server.url}/v1/trainings", json={"model": "m", "dataset": dataset},
                      timeout=10)
    assert r.status_code == 202
    assert r.headers["Location"] == f"/v1/trainings/{r.json()['id']}"
    job = poll(server.url, r.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result.metrics.accuracy == 1.0
    assert job.progress.epoch == job.result.metrics.epochs
    assert job.history.epoch and job.started_at and job.finished_at


def test_curl_predicts_all_of_xor_right(server):
    job = train(server.url, {"model": "xor-demo", "dataset": {"kind": "xor"}})
    assert job.status == "succeeded"
    x, y = datasets.xor()
    body = json.dumps({"points": x.tolist()})
    answer = PredictResponse.model_validate(curl_json(
        "-X", "POST", "-H", "Content-Type: application/json", "-d", body,
        f"{server.url}/v1/models/xor-demo/predict"))
    assert answer.version == job.result.version
    assert [p.label for p in answer.predictions] == y.astype(int).tolist()


def test_curl_posts_a_large_body_answered_as_its_objects_form(server, tmp_path):
    """A body over service.schemas.bulk.BULK_BYTES takes the bulk path in a real worker;
    the same points as {"x1", "x2"} objects take the general one: the answers are equal."""
    train(server.url, {"model": "big", "dataset": {"kind": "xor"}})
    x = datasets.linear(2_000, seed=5)[0]
    pairs, objects = tmp_path / "pairs.json", tmp_path / "objects.json"
    pairs.write_text(json.dumps({"points": x.tolist()}))
    objects.write_text(json.dumps({"points": [{"x1": a, "x2": b} for a, b in x.tolist()]}))
    answers = [curl_json("-X", "POST", "-H", "Content-Type: application/json",
                         "--data-binary", f"@{body}", f"{server.url}/v1/models/big/predict")
               for body in (pairs, objects)]
    assert pairs.stat().st_size > 16 * 1024
    assert answers[0] == answers[1] and len(answers[0]["predictions"]) == 2_000


def test_a_job_is_seen_and_cancelled_through_other_workers(server):
    body = {"model": "long", "dataset": {"kind": "linear", "n": 1000},
            "training": {"epochs": 100_000}}
    job_id = requests.post(f"{server.url}/v1/trainings", json=body, timeout=10).json()["id"]
    poll(server.url, job_id, until=("running",))
    runner = _training_pid(server, server.worker_pids())

    def read(request_id):  # a fresh connection each: the workers compete to accept it
        r = requests.get(f"{server.url}/v1/trainings/{job_id}",
                         headers={"X-Request-ID": request_id}, timeout=10)
        return r.json()["status"]

    readers = set()
    for _ in range(10):  # a round of concurrent reads usually reaches several workers
        ids = [uuid.uuid4().hex for _ in range(24)]
        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(read, ids)) == {"running"}
        readers |= set(server.pids_of(ids).values())
        if len(readers) >= 2 and readers - {runner}:
            break
    cancel_id = uuid.uuid4().hex
    r = requests.delete(f"{server.url}/v1/trainings/{job_id}",
                        headers={"X-Request-ID": cancel_id}, timeout=10)
    assert r.status_code == 200
    assert poll(server.url, job_id).status == "cancelled"
    assert requests.get(f"{server.url}/v1/models/long", timeout=5).status_code == 404
    assert len(readers) >= 2, "every read was answered by one worker"
    assert readers - {runner}, "only the training worker answered"
    assert server.pids_of([cancel_id])


def test_killing_the_worker_that_trains_fails_the_job_and_keeps_serving(server):
    train(server.url, {"model": "xor-demo", "dataset": {"kind": "xor"}})
    body = {"model": "doomed", "dataset": {"kind": "linear", "n": 1000},
            "training": {"epochs": 100_000}}
    job_id = requests.post(f"{server.url}/v1/trainings", json=body, timeout=10).json()["id"]
    poll(server.url, job_id, until=("running",))
    workers = server.worker_pids()
    victim = _training_pid(server, workers)
    os.kill(victim, signal.SIGKILL)
    job = poll(server.url, job_id, until=("failed",), timeout=30)
    assert job.error == "worker lost"
    r = requests.post(f"{server.url}/v1/models/xor-demo/predict", json={"x1": 0.1, "x2": 0.9},
                      timeout=5)
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] == 1
    assert requests.get(f"{server.url}/v1/models/doomed", timeout=5).status_code == 404


def test_restart_keeps_models_and_job_records(start_server, tmp_path):
    srv = start_server()
    job = train(srv.url, {"model": "xor-demo", "dataset": {"kind": "xor"}})
    body = {"model": "interrupted", "dataset": {"kind": "linear", "n": 1000},
            "training": {"epochs": 100_000}}
    running = requests.post(f"{srv.url}/v1/trainings", json=body, timeout=10).json()["id"]
    poll(srv.url, running, until=("running",))
    assert srv.stop() == 0
    again = start_server(port=srv.port)
    models = requests.get(f"{again.url}/v1/models", timeout=5).json()["models"]
    assert [m["name"] for m in models] == ["xor-demo"]
    kept = Job.model_validate(requests.get(f"{again.url}/v1/trainings/{job.id}", timeout=5).json())
    assert kept.status == "succeeded" and kept.result.version == job.result.version
    lost = Job.model_validate(requests.get(f"{again.url}/v1/trainings/{running}", timeout=5).json())
    assert lost.status == "failed" and lost.error
    r = requests.post(f"{again.url}/v1/models/xor-demo/predict", json={"x1": 0.5, "x2": 0.5},
                      timeout=5)
    assert r.json()["predictions"][0]["label"] == 0


def _training_pid(server, workers):
    """Return the PID of the worker whose job runner holds the running job (via the job row)."""
    jobs = requests.get(f"{server.url}/v1/trainings", params={"status": "running"},
                        timeout=5).json()["jobs"]
    assert jobs, "no running job"
    from service.jobs import SqliteJobs

    row = SqliteJobs(server.store / ".jobs.sqlite3").get(jobs[0]["id"])
    pid = int(row["worker"].split(":")[1])
    assert pid in workers
    return pid


def test_metrics_add_up_across_workers(server):
    def count(text, route):
        prefix = 'nnserve_http_requests_total{method="GET",route="' + route + '",status="200"}'
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(prefix))

    before = count(requests.get(f"{server.url}/metrics", timeout=5).text, "/healthz")
    sent, answering = 0, set()
    for _ in range(10):  # until requests have reached at least two workers
        ids = [uuid.uuid4().hex for _ in range(24)]
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda i: requests.get(
                f"{server.url}/healthz", timeout=5, headers={"X-Request-ID": i}).status_code, ids))
        assert codes == [200] * len(ids)
        sent += len(ids)
        answering |= set(server.pids_of(ids).values())
        if len(answering) >= 2:
            break
    assert len(answering) >= 2, "one worker answered everything"
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert count(text, "/healthz") - before == sent
    assert "nnserve_training_jobs{" in text
    assert "nnserve_http_request_duration_seconds_bucket" in text


def test_generated_request_ids_are_unique_across_workers(server):
    ids, answering = [], set()
    for _ in range(10):  # until requests have reached at least two workers
        with ThreadPoolExecutor(12) as pool:
            batch = list(pool.map(lambda _: requests.get(
                f"{server.url}/healthz", timeout=5).headers["X-Request-ID"], range(24)))
        ids += batch
        answering |= set(server.pids_of(batch).values())
        if len(answering) >= 2:
            break
    assert len(answering) >= 2, "one worker answered everything"
    assert len(set(ids)) == len(ids)  # forked workers do not share a random sequence
