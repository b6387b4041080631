"""Jobs on several hosts on PostgreSQL: how fast a queued job is claimed, and many small jobs
spread over three hosts.

Claim latency: a job created through one connection pool (another process's view) until a
JobRunner on another pool starts it: woken by NOTIFY (PgJobs) beside the SQLite runner,
which polls every 0.2 s. Then the cost of one claim() call with a queue waiting.

Many jobs: three hosts (tests/e2e/hosts.py: each its own PID and UTS namespace, port and
folders) on one private PostgreSQL (tests/pgkit.py), two workers each; N one-epoch jobs
submitted from 8 threads to the hosts in turn; wall time from the first submit until every
job has ended. Checked: every job succeeded at its first attempt, and the hosts hold
exactly N versions between them (a job run twice would save twice).
"""

import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .measure import Row, percentile, wall_clock

SECTION = "jobs"
ONE_EPOCH = {"dataset": {"kind": "xor"}, "training": {"epochs": 1, "starts": 1}}
SUBMITTERS = 8


def run(plan):
    """Return the rows of claim latency and of many jobs across three hosts."""
    from tests.pgkit import Cluster

    cluster = Cluster()
    try:
        rows = claim_latency(cluster, plan)
        rows += many_jobs(cluster, plan)
    finally:
        cluster.stop()
    return rows


def claim_latency(cluster, plan):
    from service.jobs import JobRunner, SqliteJobs
    from service.jobs.postgres import PgJobs
    from service.pg import Database

    samples = max(5, plan.http_samples // 4)
    with tempfile.TemporaryDirectory() as folder:
        pg_url = cluster.new_database("bench_claims")
        backends = {
            "PostgreSQL, woken by NOTIFY": lambda: PgJobs(_db(Database, pg_url)),
            "SQLite, polled every 0.2 s": lambda: SqliteJobs(Path(folder) / "jobs.sqlite3"),
        }
        latencies = {name: _start_latencies(JobRunner, make, samples)
                     for name, make in backends.items()}
        claim_ms = _claim_calls(PgJobs(_db(Database, pg_url)), samples)
    pg, sqlite = (latencies[name] for name in backends)
    rows = [_spread(name, values, "ms") for name, values in latencies.items()]
    rows[0].ratio = f"{statistics.median(sqlite) / statistics.median(pg):.0f}x sooner than SQLite"
    rows.append(_spread("PgJobs.claim() call, jobs queued", claim_ms, "ms"))
    return rows


def _db(database, url):
    db = database(url, max_size=2)
    db.migrate()
    return db


def _start_latencies(runner_class, make, samples):
    """Return the ms from create (on one backend) to execute starting (a runner on another)."""
    started, creator = [], make()
    ran = threading.Event()

    def execute(job, report):
        started.append(time.monotonic())
        ran.set()
        return {}

    runner = runner_class(make(), execute, max_running=1, timeout_s=30).start()
    latencies = []
    try:
        time.sleep(0.3)  # listening, and idle
        for _ in range(samples):
            ran.clear()
            created = time.monotonic()
            creator.create("bench", {}, 1)
            assert ran.wait(10), "the runner never started the job"
            latencies.append((started[-1] - created) * 1e3)
            time.sleep(0.05)
    finally:
        runner.stop(timeout=5)
    return latencies


def _claim_calls(jobs, samples):
    for _ in range(samples):
        jobs.create("bench", {}, 1)
    times = []
    for n in range(samples):
        clock = wall_clock()
        assert jobs.claim(f"elsewhere:{n}:1", max_running=samples) is not None
        times.append((wall_clock() - clock) * 1e3)
    return times


def many_jobs(cluster, plan):
    from tests.e2e.hosts import Host

    count = 200 if plan.name == "full" else 40 if plan.name == "quick" else 6
    url = cluster.new_database("bench_hosts")
    with tempfile.TemporaryDirectory() as folder:
        hosts = [Host(folder, name, url, workers=2, NNSERVE_MAX_RUNNING_JOBS=6)
                 for name in ("a", "b", "c")]
        try:
            with ThreadPoolExecutor(len(hosts)) as pool:
                list(pool.map(lambda host: host.start(timeout=90), hosts))
            seconds, jobs = _run_jobs(hosts, count)
            versions = _saved(hosts)
        finally:
            for host in hosts:
                host.stop()
    succeeded = sum(j["status"] == "succeeded" and j["attempt"] == 1 for j in jobs)
    ran_on = {j["worker"] for j in jobs}
    ok = succeeded == count and versions == count
    return [
        Row(SECTION, f"{count} one-epoch jobs across 3 hosts (2 workers each): total", seconds,
            "s", ratio=f"{count / seconds:.1f} jobs/s",
            target="all succeed at attempt 1, none run twice", ok=ok,
            note=f"{succeeded} succeeded at attempt 1, {versions} versions saved, "
                 f"{len(ran_on)} worker processes"),
    ]


def _run_jobs(hosts, count):
    """Return (seconds, jobs as they ended) for count jobs submitted to the hosts in turn."""
    def submit(n):
        host = hosts[n % len(hosts)]
        r = requests.post(f"{host.url}/v1/trainings", json={"model": f"m{n}", **ONE_EPOCH},
                          timeout=30)
        assert r.status_code == 202, r.text
        return r.json()["id"]

    clock = wall_clock()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        ids = list(pool.map(submit, range(count)))
    jobs = _wait_ended(hosts[0], set(ids), timeout=600)
    seconds = wall_clock() - clock
    return seconds, [{**job, "worker": _worker(hosts[0], job["id"])} for job in jobs]


def _wait_ended(host, ids, timeout):
    deadline, ended = time.monotonic() + timeout, {}
    while len(ended) < len(ids) and time.monotonic() < deadline:
        page = requests.get(f"{host.url}/v1/trainings", params={"limit": 500},
                            timeout=30).json()
        ended.update({j["id"]: j for j in page["jobs"]
                      if j["id"] in ids and j["status"] in ("succeeded", "failed", "cancelled")})
        time.sleep(0.05)
    return list(ended.values())


def _worker(host, job_id):
    import psycopg

    with psycopg.connect(host.env["NNSERVE_DATABASE_URL"]) as conn:
        return conn.execute("SELECT worker FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]


def _saved(hosts):
    """Return how many versions the hosts hold: each its own (local folders), or one store
    that every host lists alike."""
    lists = [sorted(_versions(host)) for host in hosts]
    return len(lists[0]) if all(one == lists[0] for one in lists) else sum(map(len, lists))


def _versions(host):
    models = requests.get(f"{host.url}/v1/models", timeout=30).json()["models"]
    return [(m["name"], v["version"]) for m in models
            for v in requests.get(f"{host.url}/v1/models/{m['name']}", timeout=30).json()
            ["versions"]]


def _spread(name, values, unit):
    return Row(SECTION, f"{name}: median (p99 {percentile(values, 99):.1f} {unit})",
               statistics.median(values), unit, min(values), max(values))


if __name__ == "__main__":
    from . import report
    from .measure import FULL

    print(report.table(run(FULL)))
