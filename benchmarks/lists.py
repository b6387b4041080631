"""python -m benchmarks.lists [--tree DIR]: what the job lists and the dashboard cost.

Issue 14's measures, against real gunicorn (2 workers) running the service of a source
tree (default: this one; pass a `git archive` of an older commit to measure it before):

- 20 jobs whose `points` data sets hold 100,000 points: `GET /dashboard/jobs?limit=10` (as
  the dashboard polls it, every second) and `GET /v1/trainings` (its default page), each
  call's wall time (median), the server's CPU per call and the answer's size;
- 35 models: the dashboard's models fragment and every figure it references (then each
  page's, following the fragment's Next), twice: the second pass is what a worker's
  memory or the store saves.

The server's CPU is the sum of user and system time of the master and its workers, read
from /proc before and after the calls. The server is stopped by its PID whatever happens.
"""

import argparse
import html
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .machine import describe
from .serving import Server, _cpu_seconds, request

ROOT = Path(__file__).resolve().parents[1]


class TreeServer(Server):
    """gunicorn with 2 workers serving the `service` package of a source tree (in a session
    of its own, stopped as a group); readiness and its processes as serving.Server has them."""

    def __init__(self, tree, store, port):
        self.port, self.store = port, store
        self.log = Path(store).parent / "gunicorn.log"
        env = {**os.environ, "PYTHONPATH": str(tree), "HOST": "127.0.0.1", "PORT": str(port),
               "WEB_CONCURRENCY": "2", "NNSERVE_STORE_DIR": str(store)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
                 "service:create_app()"], cwd=tree, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def cpu_seconds(self):
        """Return the user + system seconds of the master and its workers so far."""
        return _cpu_seconds(self.processes())

    def stop(self, timeout=30):
        os.killpg(self.proc.pid, signal.SIGTERM)  # the server's own session
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(server, path, calls):
    """Return (median wall s, server CPU s per call, answer bytes) of calls GETs of path."""
    walls, size = [], 0
    before = server.cpu_seconds()
    for _ in range(calls):
        started = time.perf_counter()
        status, body = request(server.port, "GET", path)
        walls.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        size = len(body)
    time.sleep(0.1)  # /proc's counters of the worker that answered last
    return statistics.median(walls), (server.cpu_seconds() - before) / calls, size


def make_jobs(server, count, points):
    """Submit count one-epoch jobs on points-point data sets; wait until all have ended."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(points, 2)).round(6)
    body = json.dumps({"dataset": {"kind": "points", "points": x.tolist(),
                                   "labels": (x[:, 0] > x[:, 1]).astype(int).tolist()},
                       "training": {"epochs": 1, "starts": 1}})
    ids = []
    for i in range(count):
        status, answer = request(server.port, "POST", "/v1/trainings",
                                 body.replace('{"dataset"', f'{{"model": "big-{i}", "dataset"',
                                              1).encode())
        if status not in (201, 202):
            raise RuntimeError(f"training {i}: {status} {answer[:300]!r}")
        ids.append(json.loads(answer)["id"])
    for job_id in ids:
        while True:
            status, answer = request(server.port, "GET", f"/v1/trainings/{job_id}")
            if json.loads(answer)["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)


def make_models(server, count):
    """Train one XOR model and upload it as count - 1 more models."""
    status, answer = request(server.port, "POST", "/v1/trainings?wait=60", json.dumps(
        {"model": "m00", "dataset": {"kind": "xor"}}).encode())
    if status not in (201, 202):
        raise RuntimeError(f"training m00: {status} {answer[:300]!r}")
    _, npz = request(server.port, "GET", "/v1/models/m00/versions/1/npz")
    for i in range(1, count):
        status, _ = request(server.port, "POST", f"/v1/models/m{i:02}/versions", npz,
                            content_type="application/octet-stream")
        if status != 201:
            raise RuntimeError(f"upload m{i:02}: {status}")


def figures_pass(server, first_page):
    """Return (wall s, server CPU s, pages, figures) of loading every page of the models
    fragment and every figure each references, as the dashboard would page through them."""
    before, started = server.cpu_seconds(), time.perf_counter()
    page, pages, figures = first_page, 0, 0
    while page:
        status, body = request(server.port, "GET", page)
        text = body.decode()
        pages += 1
        for src in re.findall(r'<img (?:data-)?src="([^"]+)"', text):
            status, _ = request(server.port, "GET", html.unescape(src))
            if status != 200:
                raise RuntimeError(f"figure {src}: {status}")
            figures += 1
        nxt = re.search(r'data-page="([^"]+)">Next<', text)
        page = html.unescape(nxt[1]) if nxt else None
    wall = time.perf_counter() - started
    time.sleep(0.1)
    return wall, server.cpu_seconds() - before, pages, figures


def run(tree, jobs=20, points=100_000, models=35, calls=5):
    """Return [(what, value)] measured against tree's service."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        server = TreeServer(tree, store, _free_port()).wait_ready()
        try:
            make_jobs(server, jobs, points)
            for path in ("/dashboard/jobs?limit=10", "/v1/trainings"):
                wall, cpu, size = measure(server, path, calls)
                rows.append((f"GET {path} ({jobs} jobs of {points:,} points)",
                             f"{wall:.3f} s wall (median of {calls}), {cpu:.3f} CPU-s a call, "
                             f"{size:,} bytes"))
            make_models(server, models)
            for attempt in ("first", "second"):
                wall, cpu, pages, figures = figures_pass(server, "/dashboard/models")
                rows.append((f"models fragment and its figures, {attempt} pass ({models} models)",
                             f"{wall:.2f} s wall, {cpu:.2f} CPU-s, {pages} page(s), "
                             f"{figures} figures"))
            wall, cpu, size = measure(server, "/dashboard/models", calls)
            rows.append(("GET /dashboard/models (the first page)",
                         f"{wall:.3f} s wall (median of {calls}), {cpu:.3f} CPU-s a call, "
                         f"{size:,} bytes"))
        finally:
            server.stop()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lists", description=__doc__)
    parser.add_argument("--tree", default=str(ROOT), help="source tree whose service to run")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=35)
    args = parser.parse_args(argv)
    print(f"tree: {args.tree}")
    for what, value in describe()[:4]:
        print(f"{what}: {value}")
    for what, value in run(Path(args.tree), args.jobs, args.points, args.models):
        print(f"| {what} | {value} |")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
