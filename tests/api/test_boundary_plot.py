"""GET /v1/trainings/{id}/boundary.png: a job's decision boundary from its latest snapshot."""

import time

import numpy as np
import pytest

from ..unit.test_plots import assert_figure
from .helpers import FAST, assert_problem, train
from .test_plots import get_png

SLOW = {"dataset": {"kind": "linear", "n": 2000}, "training": {"epochs": 100000, "starts": 1}}


def body(pixels):
    """Return the pixels below the title (which names the job and its epoch)."""
    return pixels[int(0.12 * len(pixels)):]


def differing(a, b):
    """Return the fraction of the pixels of a and b that differ."""
    return float(np.mean(np.any(a != b, axis=-1)))


def test_a_finished_jobs_boundary_is_drawn_from_its_weights_at_each_size(client):
    xor = train(client, "a", training=FAST)
    linear = train(client, "b", dataset={"kind": "linear", "n": 40}, training=FAST)
    assert xor.status == linear.status == "succeeded"
    first = get_png(client, f"/v1/trainings/{xor.id}/boundary.png")
    pixels = assert_figure(first, 500, 400)
    assert get_png(client, f"/v1/trainings/{xor.id}/boundary.png") == first  # kept
    other = assert_figure(get_png(client, f"/v1/trainings/{linear.id}/boundary.png"), 500, 400)
    assert differing(body(pixels), body(other)) > 0.05  # another boundary, other pixels
    assert_figure(get_png(client, f"/v1/trainings/{xor.id}/boundary.png?width=300&height=200"),
                  300, 200)


def test_a_running_jobs_boundary_follows_its_training(make_client):
    client = make_client(job_timeout_s=20)
    job = train(client, "slow", wait=0, **SLOW)
    url = f"/v1/trainings/{job.id}/boundary.png?width=300&height=300"
    deadline = time.monotonic() + 10
    while client.get(url).status_code == 409:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    early = assert_figure(get_png(client, url), 300, 300)
    time.sleep(0.6)  # two more writes of its progress and weights
    later = assert_figure(get_png(client, url), 300, 300)
    client.delete(f"/v1/trainings/{job.id}")
    assert differing(body(early), body(later)) > 0.001  # the boundary moved


def test_no_snapshot_yet_is_a_409_with_retry_after_and_unknown_jobs_are_404(make_client):
    client = make_client(run_jobs=False)
    queued = train(client, "q", wait=0, training=FAST)
    r = client.get(f"/v1/trainings/{queued.id}/boundary.png")
    assert_problem(r, 409, "No Snapshot Yet", "it is queued")
    assert r.headers["Retry-After"] == "1"
    client.delete(f"/v1/trainings/{queued.id}")
    r = client.get(f"/v1/trainings/{queued.id}/boundary.png")
    assert_problem(r, 409, detail="ended cancelled before its first progress report")
    assert "Retry-After" not in r.headers
    assert_problem(client.get("/v1/trainings/nope/boundary.png"), 404)
    sweep = client.post("/v1/sweeps", json={
        "model": "s", "base": {"dataset": {"kind": "xor"}, "training": FAST},
        "grid": {"network.seed": [0, 1]}})
    assert sweep.status_code == 202, sweep.json
    assert_problem(client.get(f"/v1/trainings/{sweep.json['id']}/boundary.png"), 404)


def test_a_network_too_large_for_a_snapshot_says_so(client):
    job = train(client, "big", network={"hidden": [64, 64]},
                training={"epochs": 20, "starts": 1})
    assert job.status == "succeeded"
    assert_problem(client.get(f"/v1/trainings/{job.id}/boundary.png"), 409,
                   detail="its network has 4417 weights, over the 4096 a snapshot holds")


@pytest.mark.parametrize("query", ["width=299", "height=2001", "width=x", "depth=3"])
def test_a_bad_size_is_a_422(client, query):
    job = train(client, "m", training=FAST)
    assert_problem(client.get(f"/v1/trainings/{job.id}/boundary.png?{query}"), 422)

