"""Races between processes over real gunicorn: a cancel against a job's end, a save against a
delete of its model."""

import random
import time

import requests

XOR = {"dataset": {"kind": "xor"}, "training": {"epochs": 400, "starts": 1}}


def settle(url, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/v1/trainings/{job_id}", timeout=5).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_a_cancel_that_answers_200_leaves_no_version_and_a_late_one_is_409(start_server):
    srv = start_server(workers=2)
    first = requests.post(f"{srv.url}/v1/trainings?wait=30", json={**XOR, "model": "probe"},
                          timeout=40).json()
    took = first["progress"]["elapsed_s"]  # how long one job runs: cancels land around its end
    outcomes = set()
    for i in range(16):
        name = f"race-{i}"
        job_id = requests.post(f"{srv.url}/v1/trainings", json={**XOR, "model": name},
                               timeout=10).json()["id"]
        time.sleep(random.uniform(0.1, 1.2) * took)
        cancel = requests.delete(f"{srv.url}/v1/trainings/{job_id}", timeout=10)
        job = settle(srv.url, job_id)
        versions = requests.get(f"{srv.url}/v1/models/{name}", timeout=5)
        if cancel.status_code == 200:
            assert job["status"] == "cancelled", job["status"]
            assert versions.status_code == 404, versions.json()
        else:
            assert cancel.status_code == 409, cancel.text
            assert job["status"] == "succeeded"
            assert [v["version"] for v in versions.json()["versions"]] == [1]
        outcomes.add(cancel.status_code)
    assert outcomes == {200, 409}, outcomes  # both sides of the race were run
