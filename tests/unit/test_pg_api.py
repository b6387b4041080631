"""The /v1 API over a real PostgreSQL (Flask's test client, the service's own backends):
what PostgreSQL refuses that SQLite and files take answers 4xx or 503, never 500."""

import time

import psycopg
import pytest

from tests.pgkit import Cluster

XOR = {"model": "xor", "dataset": {"kind": "xor"}, "training": {"epochs": 300}}


@pytest.fixture(scope="module")
def cluster():
    """A private PostgreSQL server: a test here makes it read-only for a while."""
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def client(make_client, cluster, tmp_path):
    client = make_client(store_dir=tmp_path / "store", database_url=cluster.url())
    job = client.post("/v1/trainings?wait=30", json=XOR).json
    assert job["status"] == "succeeded", job
    return client


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/v1/trainings/a%00b"), ("delete", "/v1/trainings/a%00b"),
    ("get", "/v1/trainings/a%00b/events"), ("get", "/v1/trainings/a%00b/plot.png"),
    ("get", "/v1/trainings/a%00b/boundary.png"), ("get", "/v1/sweeps/a%00b"),
    ("delete", "/v1/sweeps/a%00b"), ("get", "/v1/sweeps/a%00b/plot.png"),
])
def test_a_job_id_postgresql_cannot_carry_is_no_job(client, method, path):
    # a NUL reached the query, and psycopg's DataError answered 500
    r = getattr(client, method)(path)
    assert r.status_code == 404 and r.mimetype == "application/problem+json", r.data[:300]
    assert "not found" in r.json["detail"]


def _read_only(cluster, on):
    """Make every session of the cluster read-only (a standby's answer to a write), or not."""
    want = "on" if on else "off"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {want}")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while True:  # a new session has it once the postmaster reloaded, which then signalled
        with psycopg.connect(cluster.url()) as conn:  # every backend (taken before its next
            if conn.execute("SHOW default_transaction_read_only").fetchone()[0] == want:
                return  # command)
        assert time.monotonic() < deadline, "the reload never took"
        time.sleep(0.05)


def test_a_read_only_database_answers_writes_503_and_reads_on(client, cluster):
    npz = client.get("/v1/models/xor/versions/1/npz").data
    long_job = {"model": "long", "dataset": {"kind": "spiral", "n": 200},
                "network": {"hidden": [8, 8]}, "training": {"epochs": 100000, "starts": 1}}
    running = client.post("/v1/trainings", json=long_job).json["id"]
    deadline = time.monotonic() + 20
    while client.get(f"/v1/trainings/{running}").json["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _read_only(cluster, True)
    try:
        _writes_refused(client, npz)
        # a read of a running job reaps it, which writes: it read as a 503 (a review)
        for path in (f"/v1/trainings/{running}", "/v1/trainings", "/dashboard/jobs"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.data[:300])
        assert client.get(f"/v1/trainings/{running}").json["status"] == "running"
    finally:
        _read_only(cluster, False)
    client.delete(f"/v1/trainings/{running}")
    assert client.put("/v1/models/xor/aliases/prod", json={"version": 1}).status_code == 200
    assert client.post("/v1/trainings?wait=30", json=XOR).json["status"] == "succeeded"


def _writes_refused(client, npz):
    writes = {
        "train": client.post("/v1/trainings", json=XOR),
        "upload": client.post("/v1/models/xor/versions", data=npz,
                              content_type="application/octet-stream"),
        "alias": client.put("/v1/models/xor/aliases/prod", json={"version": 1}),
        "delete": client.delete("/v1/models/xor/versions/1"),
    }
    for what, r in writes.items():  # each was a 500 (ReadOnlySqlTransaction)
        assert r.status_code == 503, (what, r.status_code, r.data[:300])
        assert "read-only" in r.json["detail"], (what, r.json)
    assert client.get("/v1/models/xor").status_code == 200
    assert client.post("/v1/models/xor/predict", json={"x1": 0, "x2": 1}).status_code == 200
