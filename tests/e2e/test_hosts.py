"""Several hosts on one PostgreSQL (tests/e2e/hosts.py): a job submitted to one runs on
another, and the first serves its model; a host killed with kill -9 mid-training has its
job run again elsewhere (attempt 2) within its lease + 5 s, and a job lost twice fails
"worker lost"; a host paused past its lease and resumed has its late reports and save
refused; a cancel through one host stops a job on another; the job gauges and the
dashboard are the same from every host; a database that cannot be reached stops start-up
with one line."""

import itertools
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from .hosts import Host, ended, hostname_of, running_on, submit, wait_for
from .server import NNSERVE, ROOT, free_port

pytestmark = pytest.mark.e2e

LEASE_S = 2.0  # short leases keep the test short; the heartbeat beats at a third of it
QUICK = {"dataset": {"kind": "xor"}, "training": {"epochs": 300}}
# a second or two of training: long enough to kill or pause its host mid-run (3,000
# epochs took 0.2 s on a quiet machine and the job ended before it was seen running)
MEDIUM = {"dataset": {"kind": "linear", "n": 1000},
          "training": {"epochs": 15_000, "target_accuracy": None}}
LONG = {"dataset": {"kind": "linear", "n": 1000},
        "training": {"epochs": 100_000, "target_accuracy": None}}
_DATABASES = itertools.count()


@pytest.fixture
def make_hosts(pg_cluster, tmp_path):
    """Return start(hostname=env, ...): hosts on one fresh database with their own settings,
    started at once; every host is stopped after the test. start.url is the database's."""
    url = pg_cluster.new_database(f"hosts_{os.getpid()}_{next(_DATABASES)}")
    hosts = []

    def start(**envs):
        new = [Host(tmp_path, name, url, workers=env.pop("workers", 1),
                    NNSERVE_JOB_LEASE_S=LEASE_S, **env) for name, env in envs.items()]
        hosts.extend(new)
        with ThreadPoolExecutor(len(new)) as pool:
            list(pool.map(lambda host: host.start(timeout=60), new))
        return new

    start.url = url
    yield start
    for host in hosts:
        host.stop()


def record(url, job_id):
    """Return (worker, attempt, status, lease) of a job as the database holds it."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT worker, attempt, status, lease FROM jobs WHERE id = %s",
                            (job_id,)).fetchone()


def host_running(url, job_id, hosts):
    """Return the host whose worker holds a job (its hostname starts the worker id)."""
    return next(h for h in hosts if hostname_of(record(url, job_id)[0]) == h.hostname)


def gauges(host):
    text = requests.get(f"{host.url}/metrics", timeout=10).text
    return dict(re.findall(r'^nnserve_training_jobs\{status="(\w+)"\} (\S+)$', text, re.M))


def one_version_of(hosts, name, sha256):
    """Check no host lists a version of name but the one with sha256 (a late save would)."""
    for host in hosts:
        r = requests.get(f"{host.url}/v1/models/{name}", timeout=10)
        if r.status_code == 404:
            continue
        assert [v["sha256"] for v in r.json()["versions"]] == [sha256], (host.hostname, r.text)


def test_jobs_run_on_any_host_and_a_lost_hosts_job_runs_again_once(make_hosts):
    # front takes requests and runs no job, so each job below runs on b, c or d (one
    # worker each: a host is a process tree of its own all the same)
    front, b, c, d = make_hosts(front={"NNSERVE_RUN_JOBS": "false", "workers": 2}, b={}, c={},
                                d={})
    runners = [b, c, d]
    url = make_hosts.url

    # a job submitted to front runs on another host; every host shows it and counts it alike
    quick = ended(front, submit(front, "quick", QUICK))
    assert (quick["status"], quick["attempt"]) == ("succeeded", 1), quick
    host_running(url, quick["id"], runners)
    r = requests.post(f"{front.url}/v1/models/quick/predict", json={"points": [[0.1, 0.9]]},
                      timeout=10)  # trained elsewhere, served here
    assert r.status_code == 200 and r.json()["version"] == quick["result"]["version"], r.text
    assert len({tuple(sorted(gauges(h).items())) for h in (front, *runners)}) == 1
    assert gauges(front)["succeeded"] == "1.0"
    assert quick["id"] in requests.get(f"{front.url}/dashboard/jobs", timeout=10).text

    # paused past its lease: the job runs again elsewhere; resumed, the paused host's
    # reports, end and save are refused: one version exists
    paused_id = submit(front, "paused", MEDIUM)
    running_on(front, paused_id)
    paused = host_running(url, paused_id, runners)
    paused.signal_all(signal.SIGSTOP)
    done = ended(front, paused_id, timeout=LEASE_S + 10)
    assert (done["status"], done["attempt"]) == ("succeeded", 2), done
    after = record(url, paused_id)
    other = host_running(url, paused_id, runners)
    assert other is not paused
    paused.signal_all(signal.SIGCONT)
    time.sleep(1.5)  # its runner wakes, reports, is told to stop
    assert record(url, paused_id) == after
    assert requests.get(f"{front.url}/v1/trainings/{paused_id}", params={"view": "full"},
                        timeout=10).json() == done
    version = requests.get(f"{other.url}/v1/models/paused/versions/{done['result']['version']}",
                           timeout=10).json()
    one_version_of((front, *runners), "paused", version["sha256"])

    # cancelled through front while another host runs it: it ends cancelled, saving nothing
    cancel_id = submit(front, "cancelled", LONG)
    running_on(front, cancel_id)
    r = requests.delete(f"{front.url}/v1/trainings/{cancel_id}", timeout=10)
    assert r.status_code == 200, r.text
    assert ended(front, cancel_id, timeout=LEASE_S + 5)["status"] == "cancelled"
    for host in (front, *runners):
        assert requests.get(f"{host.url}/v1/models/cancelled", timeout=10).status_code == 404

    # kill -9 of the host running a job: it runs again on another within lease + 5 s
    killed_id = submit(front, "killed", MEDIUM)
    running_on(front, killed_id)
    victim = host_running(url, killed_id, runners)
    killed_at = time.monotonic()
    victim.kill()
    runners.remove(victim)
    done = ended(front, killed_id, timeout=LEASE_S + 5)
    assert time.monotonic() - killed_at <= LEASE_S + 5
    assert (done["status"], done["attempt"]) == ("succeeded", 2), done
    host_running(url, killed_id, runners)  # one of the hosts left

    # lost twice: it fails "worker lost", and is never left running
    lost_id = submit(front, "lost", LONG)
    first = host_running(url, running_on(front, lost_id)["id"], runners)
    first.kill()
    second_run = wait_for(front, lost_id, lambda j: j["attempt"] == 2 and j["status"] ==
                          "running" and j["progress"]["epoch"] > 0, LEASE_S + 10, "run again")
    second = host_running(url, second_run["id"], runners)
    assert second is not first
    killed_at = time.monotonic()
    second.kill()
    lost = ended(front, lost_id, timeout=LEASE_S + 5)
    assert time.monotonic() - killed_at <= LEASE_S + 5
    assert (lost["status"], lost["error"], lost["attempt"]) == ("failed", "worker lost", 2)
    assert gauges(front)["running"] == "0.0"


def test_an_unreachable_database_stops_start_up_with_one_line(tmp_path):
    url = f"postgresql://nnserve:pw-kept-secret@127.0.0.1:{free_port()}/nnserve"
    env = {**os.environ, "NNSERVE_DATABASE_URL": url, "NNSERVE_STORE_DIR": str(tmp_path),
           "PORT": str(free_port())}
    proc = subprocess.run([str(NNSERVE), "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "NNSERVE_" in line]
    assert len(lines) == 1 and "NNSERVE_DATABASE_URL" in lines[0], proc.stderr
    assert "pw-kept-secret" not in proc.stdout + proc.stderr


class _HostInTheInitialPidNamespace(Host):
    """A host whose processes share this machine's PID namespace: its host id is its
    hostname alone, the same after a restart (as a VM's, or a container whose namespace
    number the kernel gave again)."""

    def spawn(self, log):
        command = ["unshare", "--uts", "--fork", "--kill-child", "sh", "-c",
                   'hostname "$0" && exec "$@"', self.hostname, str(NNSERVE), "serve"]
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_a_host_restarted_after_a_crash_runs_its_lost_job_once_more(pg_cluster, tmp_path):
    # its start-up reap saw its old workers dead (same host id) and failed their job at
    # once, "worker lost" at attempt 1, where another host would have run it again
    url = pg_cluster.new_database(f"hosts_{os.getpid()}_{next(_DATABASES)}")
    lease = {"NNSERVE_JOB_LEASE_S": 30}  # the restart comes well within it
    first = _HostInTheInitialPidNamespace(tmp_path, "vm", url, workers=1, **lease).start(60)
    again = None
    try:
        lost_id = submit(first, "crashed", {**MEDIUM, "training": {  # 2-3 s a run
            **MEDIUM["training"], "epochs": 40_000}})
        running_on(first, lost_id)
        first.kill()
        again = _HostInTheInitialPidNamespace(tmp_path, "vm", url, workers=1, **lease)
        again.start(60)
        done = ended(again, lost_id, timeout=25)
        assert (done["status"], done["attempt"]) == ("succeeded", 2), done
    finally:
        first.stop()
        if again is not None:
            again.stop()
