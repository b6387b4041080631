"""The README's curl walk-through, taken from the README itself, against a live server."""

import json
import subprocess

import numpy as np
import pytest

from service.schemas import JobSummary, ModelList, PredictResponse

from ..readme import commented_commands

pytestmark = pytest.mark.e2e
README_URL = "http://127.0.0.1:8000"


def test_walk_through_runs_as_written(server, tmp_path):
    steps = commented_commands("Walk-through")
    assert [cmd.split()[0] for _, cmd in steps] == ["curl"] * 4
    outputs = []
    for _, command in steps:
        assert README_URL in command
        done = subprocess.run(["bash", "-c", command.replace(README_URL, server.url)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    job = JobSummary.model_validate(json.loads(outputs[0]))
    assert job.status == "succeeded" and job.result.version == 1
    assert "history" not in outputs[0] and len(outputs[0]) < 2000  # readable in a terminal
    answer = PredictResponse.model_validate(json.loads(outputs[1]))
    assert answer.model == "xor-demo" and answer.predictions[0].label == 1
    models = ModelList.model_validate(json.loads(outputs[2]))
    assert [m.name for m in models.models] == ["xor-demo"]
    with np.load(tmp_path / "xor-demo-v1.npz", allow_pickle=False) as npz:
        assert {"W0", "b0", "W2", "meta", "train_x"} <= set(npz.files)
