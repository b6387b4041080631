"""Hosts for the multi-host tests: each one an nnserve in a process tree of its own (`unshare
--uts --pid --fork --mount-proc`, with a hostname of its own), on its own loopback port and
local folders; they share nothing but one PostgreSQL database. A host is killed, paused and
resumed all at once through its process group."""

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from .server import NNSERVE, ROOT, Server

TERMINAL = ("succeeded", "failed", "cancelled")


class Host(Server):
    """One host: its gunicorn master is the first process of a new PID namespace (its
    workers' PIDs repeat those of other hosts), named hostname in a UTS namespace of its own."""

    def __init__(self, folder, hostname, database_url, workers=2, **env):
        super().__init__(Path(folder) / hostname / "store", workers=workers,
                         NNSERVE_DATABASE_URL=database_url, **env)
        self.hostname = hostname

    def spawn(self, log):
        # unshare's child, the namespace's init, is gunicorn's master (killed if unshare is)
        command = ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child",
                   "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname, str(NNSERVE), "serve"]
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def signal_all(self, sig):
        """Send sig to every process of the host at once."""
        os.killpg(self.proc.pid, sig)

    def kill(self):
        """kill -9 the whole host, as a power loss would; return once it is gone."""
        self.signal_all(signal.SIGKILL)
        self._wait_gone(10)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the host gracefully (SIGKILL to all of it after timeout)."""
        if self.proc is None or not self._alive():
            return None
        self.signal_all(signal.SIGCONT)  # a paused host cannot stop
        self.signal_all(sig)  # unshare ignores it; gunicorn's master and workers end
        if not self._wait_gone(timeout):
            self.signal_all(signal.SIGKILL)
            self._wait_gone(10)
        return self.proc.returncode

    def _alive(self):
        if self.proc.poll() is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def _wait_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while self._alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def submit(host, name, spec):
    """Return the id of a training job of name with spec, submitted to host."""
    r = requests.post(f"{host.url}/v1/trainings", json={"model": name, **spec}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def job(host, job_id):
    r = requests.get(f"{host.url}/v1/trainings/{job_id}", params={"view": "full"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(host, job_id, check, timeout, what):
    """Return the job once check(job) holds, read through host; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        current = job(host, job_id)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {what} after {timeout} s: {current}")
        time.sleep(0.05)


def running_on(host, job_id, timeout=20):
    """Return the job once it is running and has reported progress, read through host."""
    return wait_for(host, job_id, lambda j: j["status"] == "running" and
                    j["progress"]["epoch"] > 0, timeout, "running")


def ended(host, job_id, timeout=30):
    return wait_for(host, job_id, lambda j: j["status"] in TERMINAL, timeout, "ended")


def hostname_of(worker):
    """Return the hostname in a worker id ("host[/pid namespace]:pid:start")."""
    return worker.split(":")[0].split("/")[0]
