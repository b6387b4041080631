"""What the API test files share: checking a problem body, training and waiting for jobs."""

import time

from service.schemas import Job, Problem

PROBLEM = "application/problem+json"
JSON = "application/json"
FAST = {"epochs": 200}  # enough to finish quickly; for tests that need no accuracy
XOR = {"model": "m", "dataset": {"kind": "xor"}}
POINTS = {"kind": "points", "points": [[0, 0], [0, 1], [1, 0], [1, 1]], "labels": [0, 1, 1, 0]}
BAD_NAMES = {
    "parent": "../x",
    "dot dot": "..",
    "upper": "UPPER",
    "cyrillic o": "x\u043er",
    "65 chars": "a" * 65,
    "empty": "",
    "hidden": ".x",
    "option": "-x",
    "slash": "a/b",
    "space": "a b",
    "nul": "a\x00b",
}


def assert_problem(r, status, title=None, detail=None):
    """Return the Problem of response r after checking its status, media type and fields."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == PROBLEM
    problem = Problem.model_validate(r.json)
    assert problem.status == status
    assert problem.type == "/problems/" + problem.title.lower().replace(" ", "-")
    if title is not None:
        assert problem.title == title
    if detail is not None:
        assert detail in problem.detail, problem.detail
    assert "Traceback" not in r.get_data(as_text=True)
    return problem


def train(client, model, dataset=None, wait=30, headers=None, **sections):
    """Return the Job of a training request that must be accepted: 201 once it ended within
    the wait, else 202."""
    body = {"model": model, "dataset": dataset or {"kind": "xor"}, **sections}
    r = client.post(f"/v1/trainings?wait={wait}&view=full", json=body, headers=headers)
    assert r.status_code == (201 if r.json.get("finished_at") else 202), r.json
    return Job.model_validate(r.json)


def wait_for(client, job_id, statuses, timeout=15.0):
    """Return the Job once its status is one of statuses; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/trainings/{job_id}")
        assert r.status_code == 200, r.json
        job = Job.model_validate(r.json)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {timeout} s"
        time.sleep(0.02)


def job_count(client):
    """Return how many jobs the client's service has on record."""
    return client.get("/v1/trainings").json["total"]


def training_body(**sections):
    """Return the XOR training body of model 'm' with the given sections."""
    return {**XOR, **sections}
