"""GET /v1/models/{name}[/versions/{version}]/points: the training points kept with a version."""

import numpy as np
import pytest

from service.nn import datasets
from service.schemas import TrainingPoints

from .helpers import FAST, assert_problem, train


def test_a_versions_points_are_its_training_set_thinned_to_the_limit(client):
    train(client, "p", training=FAST)
    train(client, "p", dataset={"kind": "linear", "n": 300, "seed": 4}, training=FAST)
    r = client.get("/v1/models/p/versions/1/points")
    assert r.status_code == 200
    first = TrainingPoints.model_validate(r.json)
    x, y = datasets.xor()
    assert (first.model, first.version, first.stored) == ("p", 1, 21)
    np.testing.assert_allclose(first.points, x)
    assert first.labels == y.astype(int).tolist()
    latest = TrainingPoints.model_validate(client.get("/v1/models/p/points?limit=7").json)
    x, y = datasets.linear(300, seed=4)
    assert (latest.version, latest.stored, len(latest.points)) == (2, 300, 7)
    np.testing.assert_allclose(latest.points, x[::43])
    assert latest.labels == y[::43].astype(int).tolist()


@pytest.mark.parametrize("path, status", [
    ("/v1/models/nope/points", 404), ("/v1/models/p/versions/9/points", 404),
    ("/v1/models/p/points?limit=0", 422), ("/v1/models/p/points?limit=10001", 422),
    ("/v1/models/Bad_Name/points", 422)])
def test_refusals_are_problems(client, path, status):
    train(client, "p", training=FAST)
    assert_problem(client.get(path), status)
