"""A private PostgreSQL cluster for the tests: initdb into a temporary folder (as the
postgres user where we are root: initdb refuses root), a free port, its socket in its own
folder, started with pg_ctl -l and stopped by its PID, also when the run is interrupted:
a watcher process stops it once the process that made it is gone, however it ended."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin"]


def pg_bin(tool):
    """Return the path of a PostgreSQL server tool, or fail saying how to install it."""
    for folder in BIN_DIRS:
        if os.access(os.path.join(folder, tool), os.X_OK):
            return os.path.join(folder, tool)
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} not found: apt-get install postgresql")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A started PostgreSQL server on 127.0.0.1:port, trust authentication, user postgres."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="nnserve-pg-"))
        self.data, self.port, self.pid = self.folder / "data", free_port(), None
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres")
        subprocess.run([*self._as, pg_bin("initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, capture_output=True,
                       timeout=120)
        self.start()
        self._watcher = self._watch_owner()
        atexit.register(self.stop)

    def _watch_owner(self):
        """Start a process that stops the server (and removes its folder) once this process
        is gone, by SIGTERM or SIGKILL too (a CI timeout), so no PostgreSQL outlives a run.
        A SIGTERM handler here could do it only for SIGTERM, and every child forked under
        it lost a SIGTERM that came before it ran: a Pool's exit waited for one for ever."""
        pid_file, folder = self.data / "postmaster.pid", self.folder
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 0.5; done; "
                  f'pid=$(head -n 1 "{pid_file}" 2>/dev/null) && kill -INT "$pid" && '
                  f'sleep 3 && kill -KILL "$pid" 2>/dev/null; rm -rf "{folder}"')
        return subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def start(self):
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c max_connections=200")
        subprocess.run([*self._as, pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                        str(self.folder / "log"), "-w", "-o", options, "start"], check=True,
                       capture_output=True, timeout=60)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def crash(self):
        """Stop the server as a crash would (pg_ctl stop -m immediate: no checkpoint)."""
        self._pg_ctl("-m", "immediate", "stop")
        self.pid = None

    def restart(self, mode="immediate"):
        """Restart the server (immediate: as after a crash, recovering from its WAL); it
        keeps its port and options."""
        subprocess.run([*self._as, pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                        str(self.folder / "log"), "-w", "-m", mode, "restart"], check=True,
                       capture_output=True, timeout=60)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def _pg_ctl(self, *args):
        subprocess.run([*self._as, pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                        str(self.folder / "log"), "-w", *args], check=True,
                       capture_output=True, timeout=60)

    def url(self, database="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self):
        """Stop the server by its PID (a fast shutdown), then remove its folder (and end the
        watcher, which has nothing left to do)."""
        if self._watcher.poll() is None:
            self._watcher.kill()
            self._watcher.wait()
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                for _ in range(100):
                    os.kill(self.pid, 0)
                    import time
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self, name):
        """Create an empty database name; return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)
