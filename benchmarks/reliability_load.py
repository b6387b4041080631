"""Predictions under load while the same model is retrained: is every answer right for its version?

    python -m benchmarks.reliability_load [--requests N] [--concurrency C] [--processes P]
        [--trainings T] [--workers W] [--max-seconds S]

Starts gunicorn as `make run` does (tests/e2e/server.py) on a temporary store and trains
model "load". Then C keep-alive connections, spread over P client processes, send N
predictions while a thread retrains "load" again and again, so new versions appear under
the readers. Afterwards each answer is compared with the network's own forward pass on the
weights of the version the answer names, and every stored version must load. Bounded by
count and time: each connection sends its share of N and stops at the deadline.
"""

import argparse
import http.client
import json
import math
import multiprocessing
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

NAME = "load"
POINTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.2, 0.8],
          [-1.0, 2.0], [3.0, -3.0]]
SPAWN_S = 1.5  # the client processes start together, this long after being asked
TRAIN_PAUSE_S = 0.25  # between two training jobs: new versions all along a long run
MAX_TRAININGS = 2000


@dataclass
class LoadRun:
    """What the clients and the trainer saw."""

    statuses: Counter = field(default_factory=Counter)  # HTTP status -> responses
    errors: Counter = field(default_factory=Counter)  # exception name -> failed requests
    latencies_ms: list = field(default_factory=list)
    answers: dict = field(default_factory=dict)  # version -> {tuple of probabilities}
    jobs: Counter = field(default_factory=Counter)  # final job status -> jobs
    versions_saved: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self):
        return sum(self.statuses.values()) + sum(self.errors.values())

    def latency(self):
        """Return {p50, p99, max} of the answered requests, in ms."""
        ms = np.asarray(self.latencies_ms)
        return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                "max": float(ms.max())}


def run(url, n_requests, concurrency, processes, trainings, max_seconds):
    """Return the LoadRun of n_requests predictions of NAME while it is retrained."""
    _train(url, seed=0)
    result = LoadRun()
    clients_done = threading.Event()
    trainer = threading.Thread(target=_retrain, args=(url, trainings, clients_done, result,
                                                      time.monotonic() + max_seconds + 60))
    trainer.start()
    started = time.monotonic()
    try:
        _drive(url, n_requests, concurrency, processes, max_seconds, result)
    finally:
        result.seconds = time.monotonic() - started
        clients_done.set()
        trainer.join()
    return result


def verify(store_dir, answers):
    """Return (mismatched versions, versions checked, corrupt versions) against the store."""
    from service.store import FileStore

    store = FileStore(store_dir)
    corrupt = [m["version"] for m in store.versions(NAME) if "corrupt" in m]
    mismatched = []
    for version, seen in sorted(answers.items()):
        model, _ = store.load(NAME, version)
        expected = model.classify(POINTS)[0]  # as the server computes this request
        if not all(np.allclose(probs, expected, rtol=1e-12, atol=0) for probs in seen):
            mismatched.append(version)
    for meta in store.versions(NAME):  # every version on disk loads, answered or not
        store.load(NAME, meta["version"])
    return mismatched, len(answers), corrupt


def _train(url, seed, wait=30):
    body = {"model": NAME, "dataset": {"kind": "xor"}, "network": {"seed": seed},
            "training": {"epochs": 300, "starts": 1, "target_accuracy": None}}
    r = requests.post(f"{url}/v1/trainings", params={"wait": wait}, json=body, timeout=wait + 30)
    r.raise_for_status()
    return r.json()


def _retrain(url, at_least, clients_done, result, deadline):
    """Train NAME back to back until the clients are done and at_least jobs have ended."""
    for seed in range(1, MAX_TRAININGS + 1):
        ended = sum(result.jobs.values())
        if (clients_done.is_set() and ended >= at_least) or time.monotonic() > deadline:
            return
        job = _train(url, seed)
        result.jobs[job["status"]] += 1
        if job["status"] == "succeeded":
            result.versions_saved.append(job["result"]["version"])
        clients_done.wait(TRAIN_PAUSE_S)


def _drive(url, n_requests, concurrency, processes, max_seconds, result):
    """Add to result what concurrency connections in processes saw sending n_requests."""
    port = int(url.rsplit(":", 1)[1])
    per_connection = math.ceil(n_requests / concurrency)
    threads = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    start = time.time() + SPAWN_S
    context = multiprocessing.get_context("spawn")  # no copy of the caller's threads
    with context.Pool(processes) as pool:
        parts = pool.starmap(_client_process, [(port, n, per_connection, start, max_seconds)
                                               for n in threads])
    for statuses, errors, latencies, answers in parts:
        result.statuses.update(statuses)
        result.errors.update(errors)
        result.latencies_ms += latencies
        for version, seen in answers.items():
            result.answers.setdefault(version, set()).update(seen)


def _client_process(port, threads, per_connection, start, max_seconds):
    """Return (statuses, errors, latencies, answers) of threads kept-alive connections."""
    time.sleep(max(0.0, start - time.time()))
    deadline = time.monotonic() + max_seconds
    parts = [(Counter(), Counter(), [], {}) for _ in range(threads)]
    workers = [threading.Thread(target=_client_thread, args=(port, per_connection, deadline, *p))
               for p in parts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    merged = (Counter(), Counter(), [], {})
    for statuses, errors, latencies, answers in parts:
        merged[0].update(statuses)
        merged[1].update(errors)
        merged[2].extend(latencies)
        for version, seen in answers.items():
            merged[3].setdefault(version, set()).update(seen)
    return merged


def _client_thread(port, count, deadline, statuses, errors, latencies, answers):
    body = json.dumps({"points": POINTS}).encode()
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                conn.request("POST", f"/v1/models/{NAME}/predict", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors[type(exc).__name__] += 1
                conn.close()  # the next request opens a new connection
                continue
            latencies.append((time.perf_counter() - started) * 1e3)
            statuses[response.status] += 1
            if response.status == 200:
                answer = json.loads(data)
                probs = tuple(p["probability"] for p in answer["predictions"])
                answers.setdefault(answer["version"], set()).add(probs)
    finally:
        conn.close()


def report(result, verdict):
    """Return the run's figures as printable lines."""
    mismatched, checked, corrupt = verdict
    lat = result.latency()
    five = sum(n for status, n in result.statuses.items() if status >= 500)
    return [
        f"{result.requests} predictions in {result.seconds:.1f} s "
        f"({result.requests / result.seconds:.0f}/s); statuses {dict(result.statuses)}",
        f"connection errors {sum(result.errors.values())} {dict(result.errors)}; 5xx {five}",
        f"latency ms: p50 {lat['p50']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}",
        f"training jobs {dict(result.jobs)}; versions answered {checked}; "
        f"mismatched {mismatched}; corrupt {corrupt}",
    ]


def main(argv=None):
    """Run the load against a fresh server and print the figures; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability_load",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--trainings", type=int, default=50, help="at least this many jobs")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from tests.e2e.server import Server

    with tempfile.TemporaryDirectory(prefix="nnserve-load-") as tmp:
        server = Server(Path(tmp) / "store", workers=args.workers).start()
        try:
            result = run(server.url, args.requests, args.concurrency, args.processes,
                         args.trainings, args.max_seconds)
        finally:
            server.stop()
        verdict = verify(server.store, result.answers)
    for line in report(result, verdict):
        print(line)
    failed = (verdict[0] or verdict[2] or result.errors
              or any(status >= 500 for status in result.statuses))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
