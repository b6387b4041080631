"""Faults against real gunicorn: kill -9, SIGTERM under load, a read-only or full store, and
foreign files in the store. After each: nothing reported saved is lost, no partial file is
visible, and a restart brings back every saved version with interrupted jobs failed."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from service.jobs import SqliteJobs
from service.store import FileStore

pytestmark = pytest.mark.e2e

NPZ = {"Content-Type": "application/octet-stream"}
VERSION_FILE = re.compile(r"[1-9][0-9]*\.npz")
LONG = {"dataset": {"kind": "linear", "n": 1000},
        "training": {"epochs": 100_000, "target_accuracy": None}}
# 8 layers of 256 units: a 3.7 MB file, whose save (write + fsync) takes tens of ms
BIG = {"dataset": {"kind": "xor"}, "network": {"hidden": [256] * 8},
       "training": {"epochs": 1, "starts": 1}}


def train(url, name, spec=None, wait=30):
    """Return the job of training name with spec (default: XOR), as it is once ended."""
    body = {"model": name, **(spec or {"dataset": {"kind": "xor"}})}
    r = requests.post(f"{url}/v1/trainings", params={"wait": wait, "view": "full"}, json=body,
                      timeout=wait + 10)
    assert r.status_code == (201 if r.json().get("finished_at") else 202), r.text
    return r.json()


def submit(url, name, spec):
    r = requests.post(f"{url}/v1/trainings", json={"model": name, **spec}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def poll(url, job_id, until=("succeeded", "failed", "cancelled"), timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/v1/trainings/{job_id}", timeout=5).json()
        if job["status"] in until:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def saved(url, job):
    """Return (name, version, sha256) of a succeeded job's model."""
    assert job["status"] == "succeeded", job["error"]
    name, version = job["result"]["name"], job["result"]["version"]
    meta = requests.get(f"{url}/v1/models/{name}/versions/{version}", timeout=5).json()
    return name, version, meta["sha256"]


def assert_intact(srv, kept):
    """Check every (name, version, sha256) in kept is served whole, and the store holds only
    whole versions: every visible file is a version that loads, nothing corrupt is listed."""
    assert_kept(srv, kept)
    store = FileStore(srv.store)
    for model in store.list_models():
        assert "corrupt" not in model, model
        for meta in store.versions(model["name"]):
            assert "corrupt" not in meta, (model["name"], meta)
            store.load(model["name"], meta["version"])
        visible = [p.name for p in (srv.store / model["name"]).iterdir()
                   if not p.name.startswith(".")]
        assert all(VERSION_FILE.fullmatch(n) for n in visible), visible


def assert_kept(srv, kept):
    """Check every (name, version, sha256) in kept has its metadata and predicts."""
    for name, version, sha in kept:
        r = requests.get(f"{srv.url}/v1/models/{name}/versions/{version}", timeout=5)
        assert r.status_code == 200 and r.json()["sha256"] == sha, r.text
        r = requests.post(f"{srv.url}/v1/models/{name}/versions/{version}/predict",
                          json={"x1": 0.0, "x2": 1.0}, timeout=5)
        assert r.status_code == 200, r.text


def restart(start_server, srv, **env):
    """Stop srv, start a server on the same store; return (new server, seconds to ready)."""
    assert srv.stop() in (0, None)
    started = time.monotonic()
    again = start_server(store=srv.store, workers=srv.workers, **env)
    seconds = time.monotonic() - started
    print(f"restarted, ready in {seconds:.2f} s")
    return again, seconds


def assert_no_job_running(url):
    jobs = requests.get(f"{url}/v1/trainings", params={"limit": 500}, timeout=5).json()["jobs"]
    assert all(job["status"] != "running" for job in jobs)
    return jobs


def job_pid(srv, job_id):
    """Return the PID of the worker whose job runner holds the job (from the job row)."""
    row = SqliteJobs(srv.store / ".jobs.sqlite3").get(job_id)
    return int(row["worker"].split(":")[1])


def wait_for_workers(srv, n, timeout=15):
    """Return the worker PIDs once the master runs n of them again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = srv.worker_pids()
        if len(pids) == n:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not get back to {n} workers in {timeout} s")


# ----- kill -9 -----


def test_kill_9_while_training_loses_nothing_saved(start_server):
    srv = start_server(workers=3)
    kept = [saved(srv.url, train(srv.url, "xor-demo")) for _ in range(2)]
    job_id = submit(srv.url, "doomed", LONG)
    poll(srv.url, job_id, until=("running",))
    os.kill(job_pid(srv, job_id), signal.SIGKILL)
    killed = time.monotonic()
    job = poll(srv.url, job_id, until=("failed",))
    print(f"\njob failed {time.monotonic() - killed:.2f} s after kill -9 of its worker")
    assert job["error"] == "worker lost"
    wait_for_workers(srv, 3)
    assert requests.get(f"{srv.url}/v1/models/doomed", timeout=5).status_code == 404
    assert_intact(srv, kept)
    again, _ = restart(start_server, srv)
    assert_intact(again, kept)
    assert poll(again.url, job_id)["error"] == "worker lost"


KILLS = 3  # for each kind of save: a training job's, then an upload's


def test_kill_9_during_saves_leaves_only_whole_versions(start_server):
    srv = start_server(workers=3)
    kept = [saved(srv.url, train(srv.url, "big", BIG))]
    npz = requests.get(f"{srv.url}/v1/models/big/versions/1/npz", timeout=10).content
    uploads, answers = [], Counter()

    def train_once():
        try:
            train(srv.url, "big", BIG)
        except requests.ConnectionError:  # the worker answering the wait was killed
            answers["training wait cut"] += 1

    def upload_once():
        try:
            r = requests.post(f"{srv.url}/v1/models/up/versions", data=npz, headers=NPZ,
                              timeout=30)
        except requests.ConnectionError:
            answers["upload cut"] += 1
            return
        answers[f"upload {r.status_code}"] += 1
        if r.status_code == 201:
            uploads.append(("up", r.json()["version"], r.json()["sha256"]))

    assert _kill_while_saving(srv, train_once) == KILLS
    assert _kill_while_saving(srv, upload_once) == KILLS
    print(f"\n{2 * KILLS} kills during saves; {dict(answers)}")
    # A kill aimed at a save can land just after it (the temp file seen, then linked and
    # answered): so at least one upload was cut mid-save, and none was reported saved twice.
    assert 1 <= answers["upload cut"] <= KILLS
    assert set(answers) <= {"training wait cut", "upload cut", "upload 201"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _all_ended(srv.url):
        time.sleep(0.1)
    jobs = assert_no_job_running(srv.url)
    lost = [job for job in jobs if job["status"] == "failed"]
    assert 1 <= len(lost) <= KILLS and {job["error"] for job in lost} == {"worker lost"}
    upload_once()  # both kinds of save work again after the kills
    kept += uploads + [saved(srv.url, train(srv.url, "big", BIG))]
    kept += [saved(srv.url, job) for job in jobs if job["status"] == "succeeded"]
    assert_intact(srv, kept)
    jobs = assert_no_job_running(srv.url)
    again, _ = restart(start_server, srv)
    assert_intact(again, kept)
    assert assert_no_job_running(again.url) == jobs


def _kill_while_saving(srv, save, kills=KILLS, timeout=30):
    """Call save() again and again in a thread, and SIGKILL the worker that holds a temp file
    of the store open (one in the middle of a save) kills times; return the kills made."""
    stop, made = threading.Event(), 0

    def repeat():
        for _ in range(200):  # bounded; the stop event ends it first
            if stop.is_set():
                return
            save()

    thread = threading.Thread(target=repeat)
    thread.start()
    pids, deadline = srv.worker_pids(), time.monotonic() + timeout
    try:
        while made < kills and time.monotonic() < deadline:
            writer = _saving_pid(pids, srv.store)
            if writer is None:
                time.sleep(0.0005)
                continue
            os.kill(writer, signal.SIGKILL)
            made += 1
            pids = wait_for_workers(srv, srv.workers)
    finally:
        stop.set()
        thread.join(60)
    return made


def _saving_pid(pids, store):
    """Return the PID among pids holding a hidden temp file of the store open, or None."""
    prefix = str(store) + "/"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(prefix) and "/.tmp-" in target:
                    return pid
        except OSError:  # the process or the descriptor just went away
            continue
    return None


def _all_ended(url):
    jobs = requests.get(f"{url}/v1/trainings", params={"limit": 500}, timeout=5).json()["jobs"]
    return all(job["status"] in ("succeeded", "failed", "cancelled") for job in jobs)


# ----- SIGTERM -----


def test_sigterm_under_load_finishes_in_flight_requests_then_refuses(start_server):
    srv = start_server(workers=3)
    kept = [saved(srv.url, train(srv.url, "xor-demo"))]
    slow = {"dataset": {"kind": "linear", "n": 1000},
            "training": {"epochs": 15_000, "target_accuracy": None}}
    outcomes = Counter()
    with ThreadPoolExecutor(10) as pool:
        # each loader runs until it is itself refused: none stops on another's refusal
        loaders = [pool.submit(_predict_until_refused, srv.port, outcomes, time.monotonic() + 60)
                   for _ in range(8)]
        waits = [pool.submit(train, srv.url, f"slow-{i}", slow, 40) for i in range(2)]
        deadline = time.monotonic() + 10
        while len(_running(srv.url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_running(srv.url)) == 2 and outcomes["200"] > 0
        before = dict(outcomes)
        sigterm = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        refused_after = _first_refusal(srv.port, sigterm + 10) - sigterm
        for loader in loaders:
            loader.result()
        ended = [w.result() for w in waits]  # the in-flight requests got whole answers
    exit_code = srv.proc.wait(40)
    print(f"\nrefused {refused_after:.2f} s after SIGTERM; master exited {exit_code} after "
          f"{time.monotonic() - sigterm:.2f} s; load before {before}, in all {dict(outcomes)}; "
          f"in-flight jobs {[(j['status'], j['error']) for j in ended]}")
    assert exit_code == 0
    assert refused_after < 3
    # a connection is served, refused, or (caught in the backlog as the listener closed)
    # reset before any of its request was read; never left hanging, never a 5xx
    assert set(outcomes) <= {"200", "refused", "ConnectionResetError"}
    assert outcomes["refused"] == len(loaders)
    assert all(j["status"] == "succeeded" or j["error"] == "interrupted by shutdown"
               for j in ended)
    store = FileStore(srv.store)  # what the in-flight answers reported saved, as on disk
    kept += [(name, version, store.meta(name, version)["sha256"])
             for name, version in [(j["result"]["name"], j["result"]["version"])
                                   for j in ended if j["status"] == "succeeded"]]
    again, _ = restart(start_server, srv)
    assert_intact(again, kept)
    assert assert_no_job_running(again.url)


def _running(url):
    r = requests.get(f"{url}/v1/trainings", params={"status": "running"}, timeout=5)
    return r.json()["jobs"]


def _predict_until_refused(port, outcomes, deadline):
    """Predict on a new connection each time until one is refused; count how each ended."""
    body = json.dumps({"points": [[0, 1], [1, 1]]})
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("POST", "/v1/models/xor-demo/predict", body=body,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            outcomes[str(response.status)] += 1
        except ConnectionRefusedError:
            outcomes["refused"] += 1
            return
        except TimeoutError:
            outcomes["hang"] += 1
        except (OSError, http.client.HTTPException) as exc:
            outcomes[type(exc).__name__] += 1
        finally:
            conn.close()
    outcomes["still accepted at the deadline"] += 1


def _first_refusal(port, deadline):
    """Return the time a new connection is first refused; fail on a hang or the deadline."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        except ConnectionRefusedError:
            return time.monotonic()
        except ConnectionResetError:  # caught in the backlog as the listener closed: again
            pass
        except TimeoutError:
            raise AssertionError("a new connection hung instead of being refused") from None
        time.sleep(0.01)
    raise AssertionError("new connections were still accepted at the deadline")


# ----- a read-only or full store -----


@pytest.fixture
def small_fs(tmp_path):
    """Return a directory on its own 4 MB tmpfs (unmounted after the test)."""
    path = tmp_path / "store"
    path.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {out.stderr}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path, mode):
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def _fill(path):
    """Fill the filesystem of path with a hidden file until it is full."""
    # Unbuffered: a last write that fits in part leaves nothing for close() to flush.
    with open(path / ".filler", "wb", buffering=0) as f:
        try:
            for _ in range(10_000):
                f.write(b"\0" * 65536)
        except OSError:
            return
    raise AssertionError("the filesystem never filled up")


@pytest.mark.parametrize(("fault", "status", "reason"), [
    ("read-only", 503, "Read-only file system"),
    ("full", 507, "No space left on device"),
])
def test_a_read_only_or_full_store_refuses_saves_and_says_so(start_server, small_fs, tmp_path,
                                                              fault, status, reason):
    env = {"NNSERVE_JOBS_DB": tmp_path / "jobs.sqlite3"}  # the store alone is broken
    srv = start_server(store=small_fs, workers=2, **env)
    kept = [saved(srv.url, train(srv.url, "kept"))]
    npz = requests.get(f"{srv.url}/v1/models/kept/versions/1/npz", timeout=5).content
    if fault == "read-only":
        _remount(small_fs, "ro")
    else:
        _fill(small_fs)
    r = requests.get(f"{srv.url}/readyz", timeout=5)
    assert r.status_code == 503 and r.headers["Content-Type"] == "application/problem+json"
    assert reason in r.json()["checks"]["store"] and reason in r.json()["detail"]
    job = train(srv.url, "new")
    assert job["status"] == "failed"
    assert job["error"].startswith("cannot save model 'new'") and reason in job["error"]
    r = requests.post(f"{srv.url}/v1/models/kept/versions", data=npz, headers=NPZ, timeout=10)
    assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["detail"].startswith("cannot save model 'kept'") and reason in r.text
    assert str(small_fs) not in r.text
    assert_intact(srv, kept)  # reads and predictions go on
    if fault == "read-only":
        _remount(small_fs, "rw")
    else:
        (small_fs / ".filler").unlink()
    repaired = time.monotonic()
    while requests.get(f"{srv.url}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() - repaired < 5, "still not ready after the store was repaired"
        time.sleep(0.05)
    print(f"\n{fault}: ready again {time.monotonic() - repaired:.2f} s after the repair")
    kept.append(saved(srv.url, train(srv.url, "new")))
    again, _ = restart(start_server, srv, **env)
    assert_intact(again, kept)
    assert requests.get(f"{again.url}/v1/trainings/{job['id']}", timeout=5).json() == job


def test_a_full_store_holding_the_job_database_refuses_new_jobs(start_server, small_fs):
    srv = start_server(store=small_fs, workers=2)  # the default: .jobs.sqlite3 in the store
    kept = [saved(srv.url, train(srv.url, "kept"))]
    _fill(small_fs)
    assert requests.get(f"{srv.url}/readyz", timeout=5).status_code == 503
    r = requests.post(f"{srv.url}/v1/trainings", json={"model": "new", "dataset": {"kind": "xor"}},
                      timeout=10)
    assert r.status_code == 507 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["detail"] == "job database full: database or disk is full"
    assert_intact(srv, kept)
    (small_fs / ".filler").unlink()
    kept.append(saved(srv.url, train(srv.url, "new")))
    again, _ = restart(start_server, srv)
    assert_intact(again, kept)


# ----- foreign files -----


def test_corrupt_or_foreign_files_are_reported_and_harm_nothing_else(start_server, tmp_path):
    srv = start_server(workers=2)
    kept = [saved(srv.url, train(srv.url, name)) for name in ("good", "good", "other")]
    model_dir = srv.store / "good"
    whole = (model_dir / "1.npz").read_bytes()
    (model_dir / "3.npz").write_bytes(b"\x00garbage" * 100)
    (model_dir / "4.npz").write_bytes(whole[: len(whole) // 2])  # a torn write
    with zipfile.ZipFile(model_dir / "5.npz", "w") as zf:
        zf.writestr("hello.txt", "not a model")
    np.savez(model_dir / "6.npz", W0=np.ones((2, 4)))  # an npz, but not ours
    (model_dir / "notes.txt").write_text("left by someone")
    (srv.store / "README").write_text("foreign")
    (srv.store / "Bad Name").mkdir()
    shutil.copy(model_dir / "1.npz", srv.store / "Bad Name" / "1.npz")
    checked = []

    def get(path, **kw):
        r = requests.request(kw.pop("method", "GET"), srv.url + path, timeout=5, **kw)
        checked.append(r)
        return r

    listing = get("/v1/models").json()["models"]
    assert [m["name"] for m in listing] == ["good", "other"]
    assert "corrupt" in listing[0] and "metrics" in listing[1]
    versions = get("/v1/models/good").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4, 5, 6]
    assert [bool(v.get("corrupt")) for v in versions] == [False, False, True, True, True, True]
    for version in (3, 4, 5, 6):
        for path in (f"/v1/models/good/versions/{version}",
                     f"/v1/models/good/versions/{version}/npz"):
            assert get(path).status_code == 409
        r = get(f"/v1/models/good/versions/{version}/predict", method="POST",
                json={"x1": 0, "x2": 1})
        assert r.status_code == 409 and r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["detail"].startswith(f"model 'good' version {version} is corrupt: ")
    r = get("/v1/models/good/predict", method="POST", json={"x1": 0, "x2": 1})  # latest is 6
    assert r.status_code == 409 and "version 6 is corrupt" in r.json()["detail"]
    for r in checked:
        assert str(srv.store) not in r.text and "Traceback" not in r.text
    assert_kept(srv, kept)
    again, _ = restart(start_server, srv)
    models = requests.get(f"{again.url}/v1/models", timeout=5).json()["models"]
    assert [m["name"] for m in models] == ["good", "other"]
    assert_kept(again, kept)
