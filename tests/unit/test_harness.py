"""The test run's own machinery: what its fixtures change in the pytest process must not
leak into the processes the tests fork."""

import multiprocessing
import signal
import time

FORK = multiprocessing.get_context("fork")


def test_a_child_forked_under_the_clusters_sigterm_handler_dies_of_sigterm(pg_cluster):
    # pg_cluster turns SIGTERM into SystemExit in the pytest process, so that the cluster is
    # stopped; a forked child must die of the signal instead (exit code 143 before).
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
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


def test_fork_pools_end_under_the_clusters_sigterm_handler(pg_cluster):
    # A Pool's exit SIGTERMs its workers: with SystemExit raised in them mid-task, one in
    # about thirty pools hung in join() for ever (a benchmark smoke test's load client).
    for _ in range(60):
        with FORK.Pool(4) as pool:
            assert pool.map(_pause, range(4)) == list(range(4))
