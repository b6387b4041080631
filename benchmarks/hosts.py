"""Hosts: nnserve on PostgreSQL (NNSERVE_DATABASE_URL), two hosts sharing one database.

A private PostgreSQL cluster (tests/pgkit.py: initdb into a temporary folder, a free
port, fsync off, stopped by its PID) holds the models. Hosts A and B are `nnserve serve`
with 2 workers each on their own loopback ports and store folders; F is the same server
in file mode, beside A for the warm-path comparison. The rows:
- cross-host freshness: a version uploaded to B, clocked from B's 201 to A's first answer
  naming it, A asked back to back on a kept-alive connection (so a figure includes one
  request); the same right after A's listening connections were killed;
- a warm 1-point predict, A (database) beside F (files), paired load runs;
- a cold model load from the database (a new PgStore: empty memory; wall time, as the
  database's own work is in another process) beside the file store's, and a warm load.
"""

import functools
import http.client
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from service.pg import Database
from service.pg.listener import APPLICATION_NAME
from service.store import FileStore
from service.store.postgres import PgStore

from . import load
from .measure import Row, at_least, at_most, percentile, side_by_side, wall_clock
from .serving import CONCURRENCY, Server, predict_body, request
from .store import NAME, saved_store

SECTION = "hosts"
FRESH_MEDIAN_MS, FRESH_WORST_MS = 100.0, 1000.0
WARM_RATIO_TARGET, COLD_TARGET_MS, HIT_TARGET_US = 0.95, 5.0, 50.0
WORKERS = 2


def run(plan):
    """Return the rows of the database mode: freshness across hosts, warm and cold loads."""
    from tests.pgkit import Cluster  # the tests' private cluster: one way to start one

    cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _measure(plan, cluster, Path(tmp))
    finally:
        cluster.stop()


def _measure(plan, cluster, tmp):
    url = cluster.new_database("bench")
    npz = saved_store(tmp / "source").export(NAME, 1)[0]
    env = {"WEB_CONCURRENCY": str(WORKERS)}
    servers = {name: Server(_folder(tmp, name), NNSERVE_DATABASE_URL=url, **env)
               for name in "ab"}
    servers["f"] = Server(_folder(tmp, "f"), **env)
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(Server.wait_ready, servers.values()))
        a, b, f = servers["a"], servers["b"], servers["f"]
        for server in (b, f):
            _upload(server.port, NAME, npz)
        rows = _freshness(plan, a, b, npz, url)
        rows.append(_warm_predict(plan, a, f))
    finally:
        for server in servers.values():
            server.stop()
    rows += _loads(plan, url, tmp / "source")
    return rows


def _folder(tmp, name):
    folder = tmp / name / "store"
    folder.mkdir(parents=True)
    return folder


def _upload(port, model, npz):
    status, data = request(port, "POST", f"/v1/models/{model}/versions", npz,
                           content_type="application/octet-stream")
    if status != 201:
        raise RuntimeError(f"upload answered {status}: {data[:200]}")
    return json.loads(data)["version"]


def _freshness(plan, a, b, npz, url):
    """Return the rows of versions uploaded to B awaited on A, then the same with A's
    listening connections killed before each upload."""
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    try:
        plain = [_served_after(conn, b, npz) for _ in range(plan.host_trials)]
        killed = []
        for _ in range(max(2, plan.host_trials // 4)):
            _kill_listeners(url, a)
            killed.append(_served_after(conn, b, npz))
    finally:
        conn.close()
    return [_fresh_row("", plain, FRESH_MEDIAN_MS),
            _fresh_row(", A's listening connections just killed", killed, None)]


def _fresh_row(what, ms, median_target):
    """Return the row of freshness times ms: the worst within FRESH_WORST_MS, and the median
    within median_target when given."""
    median, worst = statistics.median(ms), max(ms)
    checks = [at_most(worst, FRESH_WORST_MS)]
    target = f"worst <= {FRESH_WORST_MS:g} ms"
    if median_target is not None:
        checks.insert(0, at_most(median, median_target))
        target = f"median <= {median_target:g} ms, {target}"
    return Row(SECTION, f"version uploaded to B, served by A{what} ({len(ms)} times)", median,
               "ms", min(ms), worst, ratio=f"p99 {percentile(ms, 99):.1f} ms, worst "
               f"{worst:.1f} ms", target=target, ok=all(c["ok"] for c in checks),
               note=" ".join(c["note"] for c in checks if c["note"]))


def _served_after(conn, b, npz):
    """Return the milliseconds from B's 201 for a new version to A's first answer naming it
    (A asked on conn until it does, at most 10 s)."""
    version = _upload(b.port, NAME, npz)
    saved = wall_clock()
    path = f"/v1/models/{NAME}/predict"
    while wall_clock() - saved < 10:
        status, data = request(None, "POST", path, predict_body(1), conn)  # port: conn's
        if status == 200 and json.loads(data)["version"] >= version:
            return (wall_clock() - saved) * 1e3
    return float("inf")


def _kill_listeners(url, a, timeout=5.0):
    """Terminate the listening connections of A's workers, once they are all listening."""
    names = [f"{APPLICATION_NAME} {pid}" for pid in a.processes()[1:]]
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as db:
        query = "FROM pg_stat_activity WHERE application_name = ANY(%s)"
        while db.execute(f"SELECT count(*) {query}", (names,)).fetchone()[0] < len(names):
            if time.monotonic() > deadline:
                raise RuntimeError("A's workers are not all listening")
            time.sleep(0.02)
        db.execute(f"SELECT pg_terminate_backend(pid) {query}", (names,))


def _warm_predict(plan, a, f):
    """Return the paired req/s ratio of 1-point predictions on A (database) and F (files)."""
    generator = load.pick(plan.load_generator)
    path, body = f"/v1/models/{NAME}/predict", predict_body(1)
    found = {"a": [], "f": []}

    def measure(name, server):
        found[name].append(generator(server.port, "POST", path, body, CONCURRENCY,
                                     plan.http_seconds))

    side_by_side({"a": functools.partial(measure, "a", a), "f": functools.partial(measure, "f", f)},
                 plan.http_repeats, clock=wall_clock)
    if any(r.errors for runs in found.values() for r in runs):
        raise RuntimeError("failed predictions under load")
    paired = [x.rate / y.rate for x, y in zip(found["a"], found["f"], strict=True)]
    ratio = statistics.median(paired)
    rates = {name: statistics.median(r.rate for r in runs) for name, runs in found.items()}
    p50 = {name: statistics.median(r.p50_ms for r in runs) for name, runs in found.items()}
    return Row(SECTION, f"warm 1-point predict, database / file mode req/s, concurrency "
               f"{CONCURRENCY} ({found['a'][0].tool}), paired over {len(paired)} repeats",
               ratio, "x", min(paired), max(paired),
               ratio=f"{rates['a']:,.0f} vs {rates['f']:,.0f} req/s; p50 {p50['a']:.2f} vs "
                     f"{p50['f']:.2f} ms", target=f">= {WARM_RATIO_TARGET}x",
               **at_least(ratio, WARM_RATIO_TARGET))


def _loads(plan, url, source):
    """Return the rows of cold loads from the database and the files, and a warm load."""
    db = Database(url)
    try:
        warm = PgStore(db)
        warm.load(NAME, 1)
        calls = max(10, plan.store_calls // 10)

        def repeat(fn):
            return lambda: [fn() for _ in range(calls)]

        times = side_by_side({
            "database": repeat(lambda: PgStore(db).load(NAME, 1)),
            "files": repeat(lambda: FileStore(source).load(NAME, 1)),
            "warm": repeat(lambda: warm.load(NAME)),
        }, plan.repeats, clock=wall_clock)
    finally:
        db.close()
    ms, us = 1e3 / calls, 1e6 / calls
    cold, files = times["database"].median * ms, times["files"].median * ms
    hit = times["warm"].median * us
    return [
        times["database"].row(SECTION, "cold load from the database (new PgStore, full "
                              "validation; wall time)", ms, "ms", ratio=f"{cold / files:.1f}x "
                              "the file store's", target=f"<= {COLD_TARGET_MS:g} ms",
                              **at_most(cold, COLD_TARGET_MS)),
        times["files"].row(SECTION, "cold load from files (new FileStore; wall time)", ms, "ms"),
        times["warm"].row(SECTION, "warm load, database mode (latest, cached: no network call)",
                          us, "us", target=f"<= {HIT_TARGET_US:g} us",
                          **at_most(hit, HIT_TARGET_US)),
    ]
