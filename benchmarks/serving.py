"""Serving over HTTP: real gunicorn started as the README does, on loopback, stopped by PID.

`nnserve serve` runs with the default number of workers and a temporary store. Load
runs (GET /healthz and a one-point POST .../predict, side by side, concurrency 16) use
Debian's wrk when it is installed, else a bounded Python client of several processes.
Every run is bounded in time; the server is stopped by its PID whatever happens.
"""

import functools
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from service.store import FileStore

from . import load
from .measure import Row, at_least, at_most, percentile, side_by_side, wall_clock

SECTION = "serving"
ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench"
CONCURRENCY = 16
POINT = [0.2, 0.8]
TRAIN_WAIT_S = 30
RATE_TARGET, SIZE_TARGET, BIG_TARGET_S, EPOCH_TARGET_MS, CHECK_TARGET_US = 0.8, 5.0, 0.5, 100, 50


class Server:
    """`nnserve serve` on a free loopback port with a temporary store; stop() by its PID."""

    def __init__(self, store, **settings):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store, self.log = store, Path(store).parent / f"gunicorn-{self.port}.log"
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port),
               "NNSERVE_STORE_DIR": str(store)}
        for name in ("WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"):  # the defaults, as run
            env.pop(name, None)
        env.update(settings)  # a section's own (NNSERVE_DATABASE_URL, ...)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(Path(sys.executable).with_name("nnserve")), "serve"],
                                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        """Return self once /readyz answers 200; raise if gunicorn exits or never gets there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}: see {self.log}")
            try:
                if request(self.port, "GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready in {timeout} s")

    def workers(self):
        """Return how many worker processes the master runs."""
        return len(self.processes()) - 1

    def processes(self):
        """Return the PIDs of the master and of its workers."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [self.proc.pid, *map(int, out.split())]

    def stop(self, timeout=30):
        """Stop the master by its PID (SIGKILL after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(port, method, path, body=None, conn=None, content_type="application/json"):
    """Return (status, body bytes) of one request; on conn (kept alive) when given."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def predict_body(points):
    """Return the JSON body of a prediction request: one fixed point, or seeded random ones."""
    if points == 1:
        return json.dumps({"points": [POINT]}).encode()
    x = np.random.default_rng(points).uniform(0.0, 1.0, size=(points, 2))
    return json.dumps({"points": x.tolist()}).encode()


def run(plan):
    """Return the rows of the serving targets, measured against one gunicorn."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        server = Server(store)
        try:
            server.wait_ready()
            _train(server.port, MODEL, {})
            rows = [Row(SECTION, "gunicorn workers (the default: WEB_CONCURRENCY unset)",
                        server.workers(), "workers")]
            rows += _load(server, plan)
            rows += _point_counts(server.port, plan)
            rows.append(_big_request(server.port, plan))
            rows.append(_fresh_version(server.port, plan))
            rows.append(_check_cost(store, plan))
            rows.append(_one_epoch(server.port, plan))
        finally:
            server.stop()
    return rows


def _train(port, model, training, wait=TRAIN_WAIT_S):
    body = json.dumps({"model": model, "dataset": {"kind": "xor"}, "training": training})
    status, data = request(port, "POST", f"/v1/trainings?wait={wait}", body.encode())
    job = json.loads(data)
    if status != 201 or job["status"] != "succeeded":
        raise RuntimeError(f"training {model} did not succeed: {status} {job}")
    return job


def _load(server, plan):
    """Return the req/s, latency and server CPU of /healthz and of a one-point prediction,
    and their paired ratio, the verdict's: each repeat runs both back to back, in a rotating
    order, so a slow spell of the shared machine weighs on both sides of a pair."""
    generator = load.pick(plan.load_generator)
    runs = {"healthz": ("GET", "/healthz", None),
            "predict": ("POST", f"/v1/models/{MODEL}/predict", predict_body(1))}
    processes = server.processes()
    results = {name: [] for name in runs}

    def measure(name):
        cpu = _cpu_seconds(processes)
        found = generator(server.port, *runs[name], CONCURRENCY, plan.http_seconds)
        per_request = (_cpu_seconds(processes) - cpu) / max(1.0, found.rate * plan.http_seconds)
        results[name].append((found, per_request * 1e6))

    side_by_side({name: functools.partial(measure, name) for name in runs}, plan.http_repeats,
                 clock=wall_clock)
    rows, cpu_us = [], {}
    for name, found in results.items():
        errors = sum(r.errors for r, _ in found)
        if errors:
            raise RuntimeError(f"{errors} failed {name} requests under load")
        rates = [r.rate for r, _ in found]
        p50 = statistics.median(r.p50_ms for r, _ in found)
        p99 = statistics.median(r.p99_ms for r, _ in found)
        cpu_us[name] = statistics.median(us for _, us in found)
        rows.append(Row(SECTION, f"{name} at concurrency {CONCURRENCY} ({found[0][0].tool})",
                        statistics.median(rates), "req/s", min(rates), max(rates),
                        ratio=f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; server CPU "
                              f"{cpu_us[name]:.0f} us/request"))
    paired = [p.rate / h.rate for (h, _), (p, _) in zip(results["healthz"], results["predict"],
                                                         strict=True)]
    medians = rows[1].value / rows[0].value
    rows.append(Row(SECTION, f"1-point predict / healthz req/s, paired over {len(paired)} repeats",
                    statistics.median(paired), "x", min(paired), max(paired),
                    ratio=f"ratio of the medians {medians:.2f}x; of server CPU per request "
                          f"{cpu_us['healthz'] / cpu_us['predict']:.2f}x",
                    target=f">= {RATE_TARGET}x", **at_least(statistics.median(paired),
                                                             RATE_TARGET)))
    return rows


def _cpu_seconds(pids):
    """Return the CPU seconds (user + system) the processes pids have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def _point_counts(port, plan):
    """Return the p50 round trips of 1- and 1,000-point predictions, one request at a time."""
    bodies = {1: predict_body(1), 1000: predict_body(1000)}
    ms = {size: [] for size in bodies}
    path = f"/v1/models/{MODEL}/predict"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(plan.http_samples):
            for size, body in bodies.items():
                started = wall_clock()
                status, _ = request(port, "POST", path, body, conn)
                ms[size].append((wall_clock() - started) * 1e3)
                if status != 200:
                    raise RuntimeError(f"prediction of {size} points answered {status}")
    finally:
        conn.close()
    one, thousand = statistics.median(ms[1]), statistics.median(ms[1000])
    return [
        Row(SECTION, "1-point prediction, one at a time: p50", one, "ms", min(ms[1]),
            max(ms[1]), ratio=f"p99 {percentile(ms[1], 99):.2f} ms"),
        Row(SECTION, "1,000-point prediction, one at a time: p50", thousand, "ms",
            min(ms[1000]), max(ms[1000]), ratio=f"{thousand / one:.1f}x the 1-point p50",
            target=f"<= {SIZE_TARGET:g}x", **at_most(thousand / one, SIZE_TARGET)),
    ]


def _big_request(port, plan):
    body, path = predict_body(plan.big_points), f"/v1/models/{MODEL}/predict"
    seconds = []
    for _ in range(plan.repeats):
        started = wall_clock()
        status, data = request(port, "POST", path, body)
        seconds.append(wall_clock() - started)
        if status != 200:
            raise RuntimeError(f"prediction of {plan.big_points} points answered {status}")
    median = statistics.median(seconds)
    return Row(SECTION, f"{plan.big_points:,} points in one prediction: round trip", median, "s",
               min(seconds), max(seconds), ratio=f"{len(body) / 1e6:.1f} MB up, "
               f"{len(data) / 1e6:.1f} MB down", target=f"<= {BIG_TARGET_S} s",
               **at_most(median, BIG_TARGET_S))


def _fresh_version(port, plan, connections=8):
    """Return how often a new version is served by the very next request on every connection.

    Each kept-alive connection is first served (and its worker's cache warmed) by the
    current version; a new version is then uploaded and each connection asks once more.
    """
    path = f"/v1/models/{MODEL}/predict"
    status, npz = request(port, "GET", f"/v1/models/{MODEL}/versions/1/npz")
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(connections)]
    fresh = asked = 0
    try:
        for _ in range(plan.repeats):
            for conn in conns:
                request(port, "POST", path, predict_body(1), conn)
            status, data = request(port, "POST", f"/v1/models/{MODEL}/versions", npz,
                                   content_type="application/octet-stream")
            if status != 201:
                raise RuntimeError(f"upload answered {status}: {data[:200]}")
            version = json.loads(data)["version"]
            for conn in conns:
                asked += 1
                fresh += json.loads(request(port, "POST", path, predict_body(1), conn)[1])[
                    "version"] == version
    finally:
        for conn in conns:
            conn.close()
    return Row(SECTION, f"new version served by the next request ({connections} connections)",
               fresh, f"of {asked}", target=f"{asked} of {asked}", **at_least(fresh, asked))


def _check_cost(store, plan):
    """Return the in-process cost of the freshness check: store.load of the latest, cached."""
    models, calls = FileStore(store), max(plan.store_calls, 100)
    models.load(MODEL)
    seconds = []
    for _ in range(plan.repeats):
        started = time.process_time()
        for _ in range(calls):
            models.load(MODEL)
        seconds.append(time.process_time() - started)
    us = statistics.median(seconds) / calls * 1e6
    return Row(SECTION, "the freshness check per request (store.load, latest, cached)", us, "us",
               min(seconds) / calls * 1e6, max(seconds) / calls * 1e6,
               target=f"<= {CHECK_TARGET_US} us", **at_most(us, CHECK_TARGET_US))


def _one_epoch(port, plan):
    ms = []
    for i in range(plan.repeats):
        started = wall_clock()
        _train(port, f"one-epoch-{i}", {"epochs": 1}, wait=10)
        ms.append((wall_clock() - started) * 1e3)
    median = statistics.median(ms)
    return Row(SECTION, "one-epoch training with ?wait: round trip", median, "ms", min(ms),
               max(ms), target=f"<= {EPOCH_TARGET_MS} ms", **at_most(median, EPOCH_TARGET_MS))

