"""The Open Inference Protocol beside a real peer: nnserve /v1 and /v2 against MLServer 1.7.

One nnserve (`nnserve serve`, its defaults) and one MLServer (its defaults, serving
scikit-learn's MLPClassifier((4, 4)) trained on XOR) run side by side. At each batch
size, wrk (-t2 -c16) loads nnserve /v1, nnserve /v2 (JSON) and MLServer /v2 (JSON) in
turn, repeat after repeat in a rotating order; the ratios are of the medians. MLServer
answers its default output (labels only); nnserve answers labels and probabilities.
Then /v2 with the binary tensor extension (FP32 in, binary out) at the largest size,
one request at a time.
"""

import functools
import http.client
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from . import load, mlserver
from .measure import Row, at_least, at_most, side_by_side, wall_clock
from .serving import Server, _train, request

SECTION = "inference"
MODEL = "bench"
CONCURRENCY = 16
RATE_TARGET, P99_TARGET, BINARY_TARGET_S = 1.5, 1.0, 0.1
TIMEOUT_S = 60  # a request slower than this counts as failed
BIG, BIG_SECONDS = 100_000, 10  # runs at this size last at least this long: 0.2 s a request
MIN_SECONDS = 2  # a shorter run may finish no request of MLServer's on a busy machine
HEADER = "Inference-Header-Content-Length"


def sizes(plan):
    """Return the batch sizes measured: 1, 1,000 and the plan's big request."""
    return tuple(dict.fromkeys((1, 1000, plan.big_points)))


def points(n):
    """Return n seeded points of the unit square (one fixed point for n = 1)."""
    if n == 1:
        return np.array([[0.2, 0.8]])
    return np.random.default_rng(n).uniform(0.0, 1.0, size=(n, 2))


def v1_body(x):
    return json.dumps({"points": x.tolist()}).encode()


def v2_body(x):
    """Return a JSON inference request: input "points", FP64, flat data."""
    tensor = {"name": "points", "shape": list(x.shape), "datatype": "FP64",
              "data": x.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def binary_body(x):
    """Return (body, header length): FP32 points as binary, every output binary."""
    raw = x.astype("<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "points", "shape": list(x.shape),
                                     "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + raw, len(header)


def run(plan):
    """Return the rows of the /v2 targets, nnserve and MLServer measured side by side."""
    if not _peer_ready(plan):
        return [Row(SECTION, "MLServer beside nnserve", None, "", note="skipped: no "
                    f"MLServer venv at {mlserver.VENV} (make bench builds it)")]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        ours, peer = Server(store), None
        try:
            peer = mlserver.MLServer(Path(tmp) / "mlserver")
            ours.wait_ready()
            peer.wait_ready(request)
            _train(ours.port, MODEL, {})
            rows = [Row(SECTION, "MLServer's MLPClassifier((4, 4)): XOR training accuracy",
                        peer.train_accuracy, "")]
            for n in sizes(plan):
                rows += _compare(ours, peer, n, plan)
            rows.append(_binary_round_trip(ours.port, plan))
        finally:
            ours.stop()
            if peer is not None:
                peer.stop()
    return rows


def _peer_ready(plan):
    if mlserver.installed():
        return True
    if plan.peers == "required":
        raise SystemExit(f"benchmarks need MLServer at {mlserver.VENV}: make bench builds it")
    return False


def _contenders(ours, peer, n):
    """Return {name: (port, path, body)} of the three servers' requests of n points."""
    x = points(n)
    return {"nnserve /v1": (ours.port, f"/v1/models/{MODEL}/predict", v1_body(x)),
            "nnserve /v2": (ours.port, f"/v2/models/{MODEL}/infer", v2_body(x)),
            "MLServer /v2": (peer.port, f"/v2/models/{mlserver.MODEL}/infer", v2_body(x))}


def _compare(ours, peer, n, plan):
    """Return the rows of one batch size: each contender's req/s and p99, and the ratios."""
    contenders = _contenders(ours, peer, n)
    for name, (port, path, body) in contenders.items():  # warm up, and check the answers
        status, data = request(port, "POST", path, body)
        if status != 200:
            raise RuntimeError(f"{name} answered {status} to {n} points: {data[:300]}")
    generator = load.pick(plan.load_generator)
    found = {name: [] for name in contenders}

    seconds = max(plan.http_seconds, BIG_SECONDS if n >= BIG else MIN_SECONDS)

    def measure(name):
        port, path, body = contenders[name]
        result = generator(port, "POST", path, body, CONCURRENCY, seconds, timeout_s=TIMEOUT_S)
        if result.errors:
            raise RuntimeError(f"{result.errors} failed requests to {name} at {n} points")
        found[name].append(result)

    side_by_side({name: functools.partial(measure, name) for name in contenders},
                 min(plan.http_repeats, 5), clock=wall_clock)
    rate = {name: statistics.median(r.rate for r in runs) for name, runs in found.items()}
    p99 = {name: statistics.median(r.p99_ms for r in runs) for name, runs in found.items()}
    peer_name, rows = "MLServer /v2", []
    for name, runs in found.items():
        rates = [r.rate for r in runs]
        rows.append(Row(SECTION, f"{name}, {n:,} points, concurrency {CONCURRENCY} "
                        f"({runs[0].tool})", rate[name], "req/s", min(rates), max(rates),
                        ratio=f"p50 {statistics.median(r.p50_ms for r in runs):.1f} ms, "
                              f"p99 {p99[name]:.1f} ms"))
    for name in ("nnserve /v1", "nnserve /v2"):
        ratio = rate[name] / rate[peer_name]
        rows.append(Row(SECTION, f"{name} / MLServer req/s, {n:,} points", ratio, "x",
                        target=f">= {RATE_TARGET}x", **at_least(ratio, RATE_TARGET)))
        worse = p99[name] / p99[peer_name]
        rows.append(Row(SECTION, f"{name} / MLServer p99, {n:,} points", worse, "x",
                        ratio=f"{p99[name]:.1f} ms vs {p99[peer_name]:.1f} ms",
                        target=f"<= {P99_TARGET}x", **at_most(worse, P99_TARGET)))
    return rows


def _binary_round_trip(port, plan):
    """Return the median round trip of /v2 binary FP32 at the largest size, one at a time."""
    n = max(sizes(plan))
    body, length = binary_body(points(n))
    path, seconds = f"/v2/models/{MODEL}/infer", []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        for _ in range(max(plan.repeats, 5)):
            started = wall_clock()
            conn.request("POST", path, body=body, headers={HEADER: str(length)})
            answer = conn.getresponse()
            data = answer.read()
            seconds.append(wall_clock() - started)
            if answer.status != 200 or answer.getheader(HEADER) is None:
                raise RuntimeError(f"binary inference answered {answer.status}: {data[:300]}")
    finally:
        conn.close()
    median = statistics.median(seconds)
    return Row(SECTION, f"/v2 binary FP32, {n:,} points: round trip", median, "s",
               min(seconds), max(seconds), ratio=f"{len(body) / 1e6:.1f} MB up, "
               f"{len(data) / 1e6:.1f} MB down", target=f"<= {BINARY_TARGET_S} s",
               **at_most(median, BINARY_TARGET_S))
