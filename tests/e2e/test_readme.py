"""The README's curl walk-through, taken from the README itself, against a live server."""

import json
import re
import subprocess

import numpy as np
import pytest

from service.schemas import JobSummary, ModelList, PredictResponse

from ..readme import code_blocks, commented_commands

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


# Every curl of the script also writes "<status> <method> <url>" to stderr, so the test sees
# each answer, including those a plain `curl -s` would print without failing.
CURL_STATUS = ("curl() { command curl -w '%{stderr}%{http_code} %{method} %{url_effective}\\n'"
               ' "$@"; }\n')
# What the API section's examples may answer besides a 2xx: a sweep that ended before its
# cancel (409).
MAY_REFUSE = {("DELETE", "/v1/sweeps/"): {409}}


def test_the_api_section_runs_top_to_bottom_as_written(server, tmp_path):
    """It deleted xor-demo and then downloaded its v1 (curl -s -o wrote the 404 into the
    .npz), and its <id> placeholders could not run."""
    blocks = code_blocks("API")
    script = "set -e -o pipefail\n" + CURL_STATUS + f"U={server.url}\n" + "\n".join(blocks)
    expected = sum(block.count("curl ") for block in blocks)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env={"PATH": "/usr/bin:/bin", "NNSERVE_API_TOKEN": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    answers = [line.split(" ", 2) for line in done.stderr.splitlines()
               if re.fullmatch(r"\d{3} [A-Z]+ http://\S+", line)]
    assert len(answers) == expected, "\n".join(map(" ".join, answers))
    for status, method, url in answers:
        allowed = next((codes for (m, path), codes in MAY_REFUSE.items()
                        if m == method and path in url), set())
        assert 200 <= int(status) < 300 or int(status) in allowed, (status, method, url)
    cancel = next(a for a in answers if a[1] == "DELETE" and "/v1/trainings/" in a[2])
    assert cancel[0] == "200"  # the long job was cancelled
    with np.load(tmp_path / "xor-demo-v1.npz", allow_pickle=False) as npz:
        assert {"W0", "b0", "meta"} <= set(npz.files)
    for png in ("xor-demo.png", "xor-demo-v1.png", "curve.png", "units.png", "units-v1.png",
                "sweep.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert "event: end" in done.stdout and '"status":"succeeded"' in done.stdout
