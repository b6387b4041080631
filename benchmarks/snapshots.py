"""Snapshots: what a job's weights cost in each report it writes (issue 18).

A runner writes a running job's progress at most every WRITE_INTERVAL_S (0.25 s); with it
goes a snapshot of the weights (service/snapshots.py), which the dashboard draws as the
live decision boundary. Measured: SqliteJobs.report (the default backend) of the same
progress and history without a snapshot, with the lab's network's (17 weights) and with
the largest one kept (4093 weights, MAX_PARAMS 4096), and making the largest. The target:
the largest snapshot adds at most 1% of the write interval to a report, so a training
thread spends no more than that on it.
"""

import tempfile
from pathlib import Path

import numpy as np

from service import snapshots
from service.jobs import SqliteJobs, worker_id
from service.jobs.records import snapshot_text
from service.jobs.runner import WRITE_INTERVAL_S
from service.nn.network import Architecture, count_params

from .measure import Row, at_most, side_by_side

SECTION = "snapshots"
LAB, LARGEST = Architecture(), Architecture((2, 1023, 1))
ADDED_TARGET_MS = 0.01 * WRITE_INTERVAL_S * 1e3  # 2.5 ms: 1% of the write interval
PROGRESS = {"epoch": 1200, "epochs": 5000, "loss": 0.0213, "accuracy": 1.0, "elapsed_s": 0.25}
HISTORY = {key: list(range(100)) for key in ("epoch", "loss", "accuracy")}  # a bounded one


def _theta(arch):
    return np.random.default_rng(0).normal(size=count_params(arch))


def run(plan):
    """Return the rows of a report's time with and without snapshots, and their sizes."""
    lab = snapshots.snapshot(LAB, _theta(LAB), 1200)
    theta = _theta(LARGEST)
    largest = snapshots.snapshot(LARGEST, theta, 1200)
    calls = plan.store_calls
    with tempfile.TemporaryDirectory() as root:
        jobs = SqliteJobs(Path(root) / "jobs.sqlite3")
        job_id = jobs.create("m", {"dataset": {"kind": "xor"}}, 5000)["id"]
        lease = jobs.claim(worker_id(), 1)["lease"]

        def reports(snap):
            return lambda: [jobs.report(job_id, lease, PROGRESS, HISTORY, snap)
                            for _ in range(calls)]

        times = side_by_side({
            "none": reports(None), "lab": reports(lab), "largest": reports(largest),
            "make": lambda: [snapshots.snapshot(LARGEST, theta, 1200) for _ in range(calls)],
        }, plan.repeats)
    ms = 1e3 / calls
    plain, big = times["none"].median * ms, times["largest"].median * ms
    added = big - plain + times["make"].median * ms
    return [
        times["none"].row(SECTION, "SqliteJobs.report, no snapshot", ms, "ms"),
        times["lab"].row(SECTION, "SqliteJobs.report, the lab's network (17 weights)", ms,
                         "ms", ratio=f"{times['lab'].median * ms / plain:.2f}x no snapshot"),
        times["largest"].row(SECTION, "SqliteJobs.report, the largest snapshot (4093 weights)",
                             ms, "ms", ratio=f"{big / plain:.2f}x no snapshot"),
        times["make"].row(SECTION, "making the largest snapshot (float32, base64)", ms, "ms"),
        Row(SECTION, "added to a report by the largest snapshot, made and written", added, "ms",
            ratio=f"{added / (WRITE_INTERVAL_S * 1e3):.2%} of the write interval",
            target=f"<= {ADDED_TARGET_MS:g} ms", **at_most(added, ADDED_TARGET_MS)),
        Row(SECTION, "snapshot size, the lab's network", len(snapshot_text(lab)), "chars"),
        Row(SECTION, "snapshot size, the largest", len(snapshot_text(largest)), "chars"),
    ]
