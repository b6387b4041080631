"""Worker ids across PID namespaces: a container (here `unshare --pid`) on this host that
shares its hostname has PIDs of its own, so its live workers must not be judged by PID."""

import os
import signal
import subprocess
import sys

from service.jobs import worker_id, worker_is_alive

PRINT_AND_WAIT = "from service.jobs import worker_id; print(worker_id(), flush=True); input()"


def test_a_live_worker_of_another_pid_namespace_is_not_judged_dead_by_its_pid():
    child = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                              sys.executable, "-c", PRINT_AND_WAIT], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = child.stdout.readline().strip()
        host, pid, _ = worker.rsplit(":", 2)
        assert pid == "1"  # its PID there: our init's here, started long before
        assert host != worker_id().rsplit(":", 2)[0]
        assert worker_is_alive(worker)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
