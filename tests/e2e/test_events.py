"""Event streams under real gunicorn with 2 workers: across workers, resumed, bounded, ended
on SIGTERM, and never in the way of /healthz or a prediction."""

import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ..readme import code_blocks

pytestmark = pytest.mark.e2e
STREAMS = 2  # per worker
FULL = {"target_accuracy": None, "patience": None, "tolerance": None}  # every epoch runs
LONG = {"dataset": {"kind": "spiral", "n": 2000},  # minutes: these jobs are cancelled or stopped
        "training": {"epochs": 100_000, **FULL}}


def submit(url, model, **body):
    r = requests.post(f"{url}/v1/trainings", json={"model": model, **body}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def open_stream(url, job_id, last=None):
    """Return the streaming response of a fresh connection (200 or a refusal)."""
    headers = {"Accept": "text/event-stream", "Connection": "close"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    return requests.get(f"{url}/v1/trainings/{job_id}/events", headers=headers, stream=True,
                        timeout=(5, 20))


def messages(response):
    """Yield (fields, time received) for each SSE message of response, comments included."""
    fields = {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if fields:
                yield fields, time.monotonic()
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name or "comment"] = value.strip()


def wait_running(url, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/v1/trainings/{job_id}", timeout=5).json()
        if job["status"] == "running" and job["progress"]["epoch"] > 0:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not running after {timeout} s")


def test_streams_follow_a_job_across_workers_resume_are_bounded_and_end_on_sigterm(
        start_server):
    srv = start_server(workers=2, NNSERVE_MAX_STREAMS=STREAMS, NNSERVE_MAX_RUNNING_JOBS=1,
                       NNSERVE_STREAM_KEEPALIVE_S=0.3, GUNICORN_GRACEFUL_TIMEOUT=10)
    r = requests.post(f"{srv.url}/v1/trainings?wait=30", timeout=40,
                      json={"model": "p", "dataset": {"kind": "xor"},
                            "training": {"epochs": 2000, **FULL}})
    assert r.json()["status"] == "succeeded"
    ended_job = r.json()["id"]
    job_id, later = submit(srv.url, "long", **LONG), submit(srv.url, "later", **LONG)
    wait_running(srv.url, job_id)

    # Resume: the first progress after Last-Event-ID comes from a later epoch.
    first = open_stream(srv.url, job_id)
    seen = next(m for m, _ in messages(first) if m.get("event") == "progress")
    first.close()

    # Fill every worker's streams: with 2 per worker, 3 open streams hold both workers.
    # Connections come in bursts: the worker running the job holds the GIL, so it loses
    # every accept race of a lone connection to the other worker.
    held, refused = [], []
    with ThreadPoolExecutor(6) as pool:
        for _ in range(40):
            for r in pool.map(lambda _: open_stream(srv.url, job_id, last=seen["id"]), range(6)):
                (held if r.status_code == 200 else refused).append(r)
            if len(held) >= 2 * STREAMS:
                break
            time.sleep(0.1)  # a stream closed by its client frees its slot at its next write
    for r in refused:
        r.close()
    assert len(held) == 2 * STREAMS, "no room for the streams the limit allows"
    r = open_stream(srv.url, job_id)  # every worker is full: refused whichever answers
    assert r.status_code == 503 and r.headers["Content-Type"] == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1 and "NNSERVE_MAX_STREAMS" in r.json()["detail"]
    assert all(r.status_code == 503 for r in refused)

    # The maximum open: /healthz and a 1-point predict still answer within 1 s.
    for _ in range(4):
        for method, path, body in (("GET", "/healthz", None),
                                   ("POST", "/v1/models/p/predict", {"points": [[0, 1]]})):
            started = time.monotonic()
            r = requests.request(method, srv.url + path, json=body, timeout=5,
                                 headers={"Connection": "close"})
            assert r.status_code == 200 and time.monotonic() - started < 1.0, r.text

    # Every stream (on both workers, one of which is not running the job) sees progress
    # while the job runs, epochs after the resumed one, then the end of its cancel.
    got = [[] for _ in held]

    def read(i):
        got[i] = [m for m, _ in messages(held[i])]

    readers = [threading.Thread(target=read, args=(i,)) for i in range(len(held))]
    for t in readers:
        t.start()
    time.sleep(1.5)
    assert requests.delete(f"{srv.url}/v1/trainings/{job_id}", timeout=10).status_code == 200
    for t in readers:
        t.join(60)
    for stream in got:
        progress = [m for m in stream if m.get("event") == "progress"]
        ids = [int(m["id"]) for m in progress]
        assert ids and ids[0] > int(seen["id"]) and ids == sorted(set(ids))
        assert len(progress) >= 2  # the resumed one and at least one while the readers read
        assert stream[-1]["event"] == "end"
        assert json.loads(stream[-1]["data"])["status"] == "cancelled"

    # The README's curl -N commands, as written: the ended job's last progress, then its end.
    commands = [line for block in code_blocks("API") for line in block.splitlines()
                if line.startswith("curl -N")]
    assert len(commands) == 2
    for command in commands:
        out = subprocess.run(["bash", "-c", command], timeout=30,
                             env={"U": srv.url, "JOB": ended_job, "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=True).stdout
        assert out.startswith("retry: ") and "\nevent: end\ndata: {\"status\":\"succeeded\"" in out
        assert "id: 2000\nevent: progress\n" in out  # the last progress, past epoch 1200

    # SIGTERM: streams of a job queued behind a running one (so nothing would end them)
    # end at once, well within the graceful timeout.
    wait_running(srv.url, later)
    queued = submit(srv.url, "queued", **LONG)
    open_now = [open_stream(srv.url, queued) for _ in range(2)]
    iters = [messages(r) for r in open_now if r.status_code == 200]
    for it in iters:
        next(it)  # the retry line: the stream is open
    ended = []
    closer = [threading.Thread(target=lambda it=it: ended.append(
        (list(it), time.monotonic()))) for it in iters]
    for t in closer:
        t.start()
    sent = time.monotonic()
    srv.proc.send_signal(15)
    for t in closer:
        t.join(15)
    assert len(ended) == len(iters) >= 1
    assert all(at - sent < 5 for _, at in ended)
    assert srv.proc.wait(15) == 0


def test_a_stream_whose_client_left_frees_its_place_without_waiting_for_a_write(start_server):
    srv = start_server(workers=1, NNSERVE_MAX_STREAMS=STREAMS, NNSERVE_MAX_RUNNING_JOBS=1)
    running, queued = submit(srv.url, "long", **LONG), submit(srv.url, "queued", **LONG)
    wait_running(srv.url, running)
    url = f"{srv.url}/v1/trainings/{queued}/events"  # a queued job: nothing to write for 15 s
    for _ in range(2):  # the clients of every place leave; curl as the README streams
        clients = [subprocess.Popen(["curl", "-sN", "--max-time", "1", url],
                                    stdout=subprocess.PIPE, text=True) for _ in range(STREAMS)]
        answers = [c.communicate(timeout=10)[0] for c in clients]
        assert all(a.startswith("retry: ") for a in answers), answers
        time.sleep(2.0)  # a probe's write (1 s), its reset and a tick, under the keep-alive
        r = open_stream(srv.url, queued)
        assert r.status_code == 200, r.text  # before: 503 until a keep-alive's write failed
        r.close()
        time.sleep(2.0)  # this client left too
    for job_id in (queued, running):
        requests.delete(f"{srv.url}/v1/trainings/{job_id}", timeout=10)


def test_a_client_that_only_shuts_its_sending_side_still_gets_every_event(start_server):
    srv = start_server(workers=1)
    job_id = submit(srv.url, "half", dataset={"kind": "linear", "n": 1000},
                    training={"epochs": 20_000, **FULL})  # a few seconds of progress
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(f"GET /v1/trainings/{job_id}/events HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n".encode())
        sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc -N` does; it goes on reading
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    text = answer.decode()
    assert text.startswith("HTTP/1.1 200") and "event: end" in text, text[-500:]
    assert text.count("event: progress") >= 2 and '"status":"succeeded"' in text
