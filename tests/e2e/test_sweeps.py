"""Sweeps under real gunicorn (2 workers): the README's curl, the alias, a restart."""

import json
import subprocess
import time

import pytest
import requests

from service.schemas import Sweep

from ..readme import code_blocks

pytestmark = pytest.mark.e2e


def _curl(command, url):
    done = subprocess.run(["bash", "-c", command.replace("$U", url)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _ended(url, sweep_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        sweep = Sweep.model_validate(requests.get(f"{url}/v1/sweeps/{sweep_id}", timeout=5).json())
        if sweep.status in ("succeeded", "failed", "cancelled"):
            return sweep
        assert time.monotonic() < deadline, f"sweep still {sweep.status}"
        time.sleep(0.1)


def test_the_readme_sweep_runs_end_to_end_and_survives_a_restart(start_server, tmp_path):
    srv = start_server(workers=2, NNSERVE_RUN_JOBS="true")
    block = code_blocks("Sweeps")[0]
    post = block[:block.index("\ncurl", 1)]  # the first command: SWEEP=$(the POST), 5 lines
    started = _curl(post + '\nprintf \'{"id": "%s"}\' "$SWEEP"', srv.url)
    sweep = _ended(srv.url, started["id"])
    assert sweep.status == "succeeded", sweep.error
    assert sweep.progress.done == sweep.progress.total == 8
    assert {t.status for t in sweep.trials} == {"succeeded"}
    listed = _curl('curl -s "$U/v1/sweeps?limit=10"', srv.url)
    assert [s["id"] for s in listed["sweeps"]] == [sweep.id]
    model = _curl('curl -s "$U/v1/models/xor-lr"', srv.url)
    assert model["aliases"] == {"best": sweep.best.version}
    assert len(model["versions"]) == 8
    answer = _curl("curl -s -X POST \"$U/v1/models/xor-lr/aliases/best/predict\" -H "
                   "'Content-Type: application/json' -d '{\"x1\": 0.1, \"x2\": 0.9}'", srv.url)
    assert answer["version"] == sweep.best.version

    # a sweep queued while no worker runs jobs is kept and run after a restart
    assert srv.stop() == 0
    idle = start_server(workers=2, port=srv.port, NNSERVE_RUN_JOBS="false")
    body = {"model": "later", "base": {"dataset": {"kind": "xor"},
                                       "training": {"epochs": 50, "starts": 1}},
            "grid": {"network.seed": [0, 1]}}
    queued = requests.post(f"{idle.url}/v1/sweeps", json=body, timeout=10).json()["id"]
    assert idle.stop() == 0
    again = start_server(workers=2, port=srv.port)
    kept = Sweep.model_validate(requests.get(f"{again.url}/v1/sweeps/{sweep.id}",
                                             timeout=5).json())
    assert kept == sweep
    later = _ended(again.url, queued)
    assert later.status == "succeeded" and [t.version for t in later.trials] == [1, 2]


def test_a_sweep_whose_worker_is_killed_shows_the_trials_it_saved(start_server):
    # its last report came before the saves: the trials whose versions are in the store were
    # shown failed with no version, and nothing named them
    import os
    import signal
    import sqlite3

    srv = start_server(workers=2)
    body = {"model": "lost", "base": {"dataset": {"kind": "xor"},
                                      "training": {"epochs": 20_000, "starts": 1}},
            "grid": {"network.hidden": [[4], [4, 4], [3]], "network.seed": [0, 1]}}
    sweep_id = requests.post(f"{srv.url}/v1/sweeps", json=body, timeout=10).json()["id"]
    db = sqlite3.connect(f"file:{srv.store / '.jobs.sqlite3'}?mode=ro", uri=True)
    deadline = time.monotonic() + 60
    while True:  # the first group's two versions are in place: kill its worker at once
        saved = list((srv.store / "lost").glob("[0-9]*.npz"))
        worker = db.execute("SELECT worker FROM jobs WHERE id = ?", (sweep_id,)).fetchone()[0]
        if len(saved) >= 2 and worker:
            os.kill(int(worker.split(":")[1]), signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "no version saved"
        time.sleep(0.001)
    db.close()
    sweep = _ended(srv.url, sweep_id)
    assert sweep.status == "failed" and sweep.error == "worker lost"
    versions = requests.get(f"{srv.url}/v1/models/lost", timeout=5).json()["versions"]
    kept = {v["sweep"]["trial"]: v["version"] for v in versions}
    assert len(kept) >= 2
    shown = {t.trial: t.version for t in sweep.trials if t.status == "succeeded"}
    assert shown == kept
    assert all(t.version is None for t in sweep.trials if t.trial not in kept)
