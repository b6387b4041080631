"""Models on several hosts: two real gunicorn servers on their own loopback ports, each with
its own local folders, sharing nothing but one private PostgreSQL (NNSERVE_DATABASE_URL).

A model trained or uploaded through one is served by the other; six trainings of one name
across both get versions 1..6; with a host's listening connections killed, a version
saved on the other is served within a second; an immediate restart of PostgreSQL in the
middle of uploads loses none that was answered 201."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from service.pg.listener import APPLICATION_NAME

from .server import Server

TRAINING = {"dataset": {"kind": "xor"}, "training": {"epochs": 30}}
NPZ = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def cluster():
    from tests.pgkit import Cluster

    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def hosts(cluster, tmp_path_factory):
    """Two 2-worker servers, A and B, on one database; stopped after the module."""
    url = cluster.new_database("hosts")
    servers = [Server(tmp_path_factory.mktemp(f"host-{name}") / "store", workers=2,
                      NNSERVE_DATABASE_URL=url) for name in "ab"]
    try:
        with ThreadPoolExecutor(2) as pool:  # both boot at once
            list(pool.map(Server.start, servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def npz(hosts):
    """Return the .npz bytes of a model trained through A, to upload."""
    train(hosts[0], "seed")
    return requests.get(f"{hosts[0].url}/v1/models/seed/versions/1/npz", timeout=10).content


def train(host, model):
    r = requests.post(f"{host.url}/v1/trainings?wait=60", json={"model": model, **TRAINING},
                      timeout=90)
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    return r.json()["result"]["version"]


def predict(host, model, version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + "/predict"
    return requests.post(host.url + path, json={"x1": 0.1, "x2": 0.9}, timeout=10)


def upload(host, model, data):
    return requests.post(f"{host.url}/v1/models/{model}/versions", data=data, headers=NPZ,
                         timeout=10)


def served_version(host, model):
    r = predict(host, model)
    return r.json()["version"] if r.status_code == 200 else r.status_code


def test_a_model_trained_or_uploaded_on_one_host_is_served_by_the_other(hosts):
    a, b = hosts
    assert train(a, "xor-shared") == 1
    served = predict(b, "xor-shared")
    assert served.status_code == 200 and served.json()["version"] == 1
    data = requests.get(f"{b.url}/v1/models/xor-shared/versions/1/npz", timeout=10).content
    assert upload(b, "copy", data).status_code == 201
    assert predict(a, "copy").json()["model"] == "copy"
    original, copy = (requests.get(f"{host.url}/v1/models/{name}/versions/1", timeout=10).json()
                      for host, name in ((a, "xor-shared"), (b, "copy")))
    assert copy["sha256"] == original["sha256"]
    assert requests.delete(f"{a.url}/v1/models/copy", timeout=10).status_code == 204
    assert predict(b, "copy").status_code == 404
    names = [m["name"] for m in requests.get(f"{b.url}/v1/models", timeout=10).json()["models"]]
    assert "xor-shared" in names and "copy" not in names


def test_six_trainings_of_one_name_across_hosts_get_versions_one_to_six(hosts):
    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(lambda i: train(hosts[i % 2], "six"), range(6)))
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    for host in hosts:
        listed = requests.get(f"{host.url}/v1/models/six", timeout=10).json()
        assert [v["version"] for v in listed["versions"]] == [1, 2, 3, 4, 5, 6]


def test_with_its_listening_connections_killed_a_host_serves_a_new_version_within_1_s(
        hosts, cluster, npz):
    a, b, data = *hosts, npz
    assert upload(b, "fresh", data).json()["version"] == 1
    for _ in range(10):  # warm in every worker of A
        assert served_version(a, "fresh") == 1
    workers = a.worker_pids()
    with psycopg.connect(cluster.url("hosts"), autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name"
            " = ANY(%s)", ([f"{APPLICATION_NAME} {pid}" for pid in workers],)).rowcount
    assert killed == len(workers)
    r = upload(b, "fresh", data)
    saved = time.monotonic()
    assert r.status_code == 201 and r.json()["version"] == 2
    while served_version(a, "fresh") != 2:
        assert time.monotonic() - saved < 1.0, "A served the old version for over 1 s"
    time.sleep(max(0.0, 1.0 - (time.monotonic() - saved)))
    assert [served_version(a, "fresh") for _ in range(10)] == [2] * 10  # every worker


def test_an_immediate_restart_of_postgresql_mid_uploads_loses_no_201(hosts, cluster, npz):
    data = npz
    acknowledged, statuses, stop = [], [], threading.Event()

    def keep_uploading(host, model):
        while not stop.is_set():
            try:
                r = upload(host, model, data)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)
                continue
            statuses.append(r.status_code)
            if r.status_code == 201:
                acknowledged.append((model, r.json()["version"]))
            elif r.status_code != 503:
                stop.set()  # anything but 201 or 503 fails below

    threads = [threading.Thread(target=keep_uploading, args=(host, f"up-{i}"))
               for i, host in enumerate(hosts * 2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        before = len(acknowledged)
        cluster.restart("immediate")
        time.sleep(3.0)  # the hosts reconnect by themselves
        after_restart = len(acknowledged)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert set(statuses) <= {201, 503}, statuses
    assert before > 0 and len(acknowledged) > after_restart  # uploads answered 201 again
    for host in hosts:
        for model in {m for m, _ in acknowledged}:
            listed = requests.get(f"{host.url}/v1/models/{model}", timeout=10).json()
            found = {v["version"] for v in listed["versions"]}
            assert {v for m, v in acknowledged if m == model} <= found
