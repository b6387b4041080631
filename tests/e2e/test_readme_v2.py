"""The README's /v2 examples, taken from the README itself, against a live server."""

import json
import subprocess
import sys

import pytest
import requests

from ..readme import code_blocks

pytestmark = pytest.mark.e2e


def _v2_curls():
    return [line for block in code_blocks("API") for line in block.splitlines()
            if line.startswith("curl") and '"$U/v2' in line]


def test_every_v2_curl_runs_as_written(server):
    r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30}, timeout=40,
                      json={"model": "xor-demo", "dataset": {"kind": "xor"}})
    assert r.json()["status"] == "succeeded"
    curls = _v2_curls()
    assert len(curls) == 10
    answers = []
    for command in curls:
        done = subprocess.run(["bash", "-c", command], env={"U": server.url, "PATH": "/usr/bin"},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    assert answers[0] == {"live": True} and answers[1] == {"ready": True}
    assert answers[2] == answers[3] and answers[2]["name"] == "nnserve"
    assert answers[4]["versions"] == ["1"] and answers[6]["ready"] is True
    infer, pinned = answers[8], answers[9]
    assert infer["id"] == "req-1" and infer["outputs"][0]["data"] == [1, 0]
    assert [o["name"] for o in pinned["outputs"]] == ["label"]
    assert pinned["outputs"][0]["data"] == [1]


def test_the_tritonclient_example_runs_as_written(server):
    r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30}, timeout=40,
                      json={"model": "xor-demo", "dataset": {"kind": "xor"}})
    assert r.json()["status"] == "succeeded"
    (example,) = code_blocks("API", "python")
    assert 'url="127.0.0.1:8000"' in example
    source = example.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")

    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[1 0] [")
