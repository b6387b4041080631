"""The test run's own machinery: what its fixtures change in the pytest process must not
leak into the processes the tests fork."""

import multiprocessing
import signal
import time
from pathlib import Path

FORK = multiprocessing.get_context("fork")


def test_no_postgresql_outlives_the_process_that_made_it(tmp_path):
    # a run killed by a CI timeout (SIGKILL: no handler, no atexit) must not leave its
    # cluster running; the SIGTERM handler that did it for SIGTERM alone is gone (below)
    import os
    import subprocess
    import sys

    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
         " from tests.pgkit import Cluster; c = Cluster(); print(c.pid, c.folder, flush=True);"
         " time.sleep(60)", str(Path(__file__).resolve().parents[2])],
        stdout=subprocess.PIPE, text=True)
    pid, folder = owner.stdout.readline().split()
    os.kill(int(pid), 0)  # running
    owner.kill()
    owner.wait(10)
    deadline = time.monotonic() + 15
    while _alive(int(pid)) or Path(folder).exists():
        assert time.monotonic() < deadline, f"PostgreSQL {pid} still running, or {folder} kept"
        time.sleep(0.1)


def _alive(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_child_forked_dies_of_sigterm(pg_cluster):
    # pg_cluster once turned SIGTERM into SystemExit in the pytest process; a forked child
    # must die of the signal (exit code 143 before), and none may lose it: no handler here
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    running = FORK.Event()
    child = FORK.Process(target=_sleep, args=(running,))
    child.start()
    assert running.wait(10)
    child.terminate()
    child.join(10)
    assert child.exitcode == -signal.SIGTERM


def _sleep(running):
    running.set()
    time.sleep(30)


def _pause(i):
    time.sleep(0.02)
    return i


def test_fork_pools_end_while_a_cluster_runs(pg_cluster):
    # A Pool's exit SIGTERMs its workers: with SystemExit raised in them mid-task, one in
    # about thirty pools hung in join() for ever (a benchmark smoke test's load client);
    # with the handler reset after fork, a worker SIGTERMed before it reset it lost the
    # signal and the pool waited for ever (once in 600 pools on a loaded machine).
    for _ in range(60):
        with FORK.Pool(4) as pool:
            assert pool.map(_pause, range(4)) == list(range(4))
