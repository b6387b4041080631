"""Start real gunicorn the way `make run` does (nnserve serve), on a free loopback port."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
NNSERVE = Path(sys.executable).with_name("nnserve")


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One gunicorn master with its workers, serving a store directory; stopped by its PID."""

    def __init__(self, store, workers=3, port=None, **env):
        self.store, self.workers, self.port = Path(store), workers, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.store.parent / f"gunicorn-{self.port}.log"
        self.env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port),
                    "WEB_CONCURRENCY": str(workers), "NNSERVE_STORE_DIR": str(self.store),
                    **{k: str(v) for k, v in env.items()}}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = None

    def spawn(self, log):
        """Return the started gunicorn master (a subclass may start it elsewhere)."""
        return subprocess.Popen([str(NNSERVE), "serve"], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)

    def start(self, timeout=30):
        """Start gunicorn and return self once /readyz answers 200."""
        self.store.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = self.spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:  # not listening, or workers still booting
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn not ready in {timeout} s:\n{self.log_text()}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop the master by its PID (SIGKILL after timeout); return its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def worker_pids(self):
        """Return the PIDs of the master's live worker processes."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return {int(pid) for pid in out.split()}

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pids_of(self, request_ids, timeout=10):
        """Return {request id: pid of the worker that answered it}, waiting for the log lines
        (gunicorn writes a request's line after its response has gone out)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = {rec["request_id"]: rec["pid"] for rec in self.access_log()}
            if all(i in pids for i in request_ids) or time.monotonic() > deadline:
                return {i: pids[i] for i in request_ids if i in pids}
            time.sleep(0.05)

    def access_log(self):
        """Return the JSON access-log records written so far."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records
