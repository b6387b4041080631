"""/v1/models/{name}/aliases: point, move, list, predict through and delete aliases."""

import pytest

from service.nn.datasets import xor
from service.schemas import Alias, ModelDetail, PredictResponse, VersionMeta

from .helpers import FAST, assert_problem, train


@pytest.fixture
def two(client):
    """Model 'm' with versions 1 (a few epochs: poor) and 2 (trained longer)."""
    for epochs in (5, FAST["epochs"]):
        job = train(client, "m", training={"epochs": epochs, "starts": 1})
        assert job.status == "succeeded", job.error
    return client


def _scores(client, path):
    r = client.post(path, json={"points": xor()[0].tolist()})
    assert r.status_code == 200, r.json
    answer = PredictResponse.model_validate(r.json)
    return answer.version, [p.probability for p in answer.predictions]


def test_put_points_an_alias_and_get_lists_it(two):
    r = two.put("/v1/models/m/aliases/prod", json={"version": 1})
    assert r.status_code == 200, r.json
    assert Alias.model_validate(r.json) == Alias(name="m", alias="prod", version=1)
    detail = ModelDetail.model_validate(two.get("/v1/models/m").json)
    assert detail.aliases == {"prod": 1}
    assert [v.model_extra["aliases"] for v in detail.versions] == [["prod"], []]
    meta = VersionMeta.model_validate(two.get("/v1/models/m/versions/1").json)
    assert meta.model_extra["aliases"] == ["prod"]


def test_predict_through_an_alias_answers_its_version(two):
    two.put("/v1/models/m/aliases/prod", json={"version": 1})
    assert _scores(two, "/v1/models/m/aliases/prod/predict") == _scores(
        two, "/v1/models/m/versions/1/predict")
    two.put("/v1/models/m/aliases/prod", json={"version": 2})  # moved
    version, scores = _scores(two, "/v1/models/m/aliases/prod/predict")
    assert version == 2 and scores == _scores(two, "/v1/models/m/versions/2/predict")[1]
    assert scores != _scores(two, "/v1/models/m/versions/1/predict")[1]


def test_an_alias_to_a_missing_version_is_404_naming_it(two):
    r = two.put("/v1/models/m/aliases/prod", json={"version": 9})
    assert_problem(r, 404, "Model Not Found", "version 9")
    r = two.put("/v1/models/other/aliases/prod", json={"version": 1})
    assert_problem(r, 404, "Model Not Found", "'other'")
    assert two.get("/v1/models/m").json["aliases"] == {}


def test_a_missing_alias_is_404(two):
    r = two.post("/v1/models/m/aliases/nope/predict", json={"x1": 0, "x2": 0})
    assert_problem(r, 404, "Alias Not Found", "'nope'")
    assert_problem(two.delete("/v1/models/m/aliases/nope"), 404, "Alias Not Found")


def test_delete_removes_the_alias_not_the_version(two):
    two.put("/v1/models/m/aliases/prod", json={"version": 2})
    assert two.delete("/v1/models/m/aliases/prod").status_code == 204
    assert two.get("/v1/models/m").json["aliases"] == {}
    assert two.get("/v1/models/m/versions/2").status_code == 200


def test_deleting_a_version_removes_its_aliases(two):
    two.put("/v1/models/m/aliases/prod", json={"version": 2})
    two.put("/v1/models/m/aliases/old", json={"version": 1})
    assert two.delete("/v1/models/m/versions/2").status_code == 204
    assert two.get("/v1/models/m").json["aliases"] == {"old": 1}
    r = two.post("/v1/models/m/aliases/prod/predict", json={"x1": 0, "x2": 0})
    assert_problem(r, 404, "Alias Not Found")


@pytest.mark.parametrize(("body", "loc"), [
    ({}, ["version"]),
    ({"version": 0}, ["version"]),
    ({"version": "1"}, ["version"]),
    ({"version": 1, "extra": 1}, ["extra"]),
])
def test_a_bad_body_is_422_naming_the_field(two, body, loc):
    r = two.put("/v1/models/m/aliases/prod", json=body)
    problem = assert_problem(r, 422)
    assert problem.errors[0]["loc"] == loc


def test_a_bad_alias_name_is_422_naming_it(two):
    r = two.put("/v1/models/m/aliases/UPPER", json={"version": 1})
    problem = assert_problem(r, 422)
    assert problem.errors[0]["loc"] == ["alias"]


def test_a_model_read_while_its_alias_moves_agrees_with_itself(app, two):
    # the versions' aliases and the aliases map were two reads: a move between them gave
    # "version 1 lists prod but aliases={'prod': 2}" (4 in 2,100 reads over HTTP)
    import threading

    npz = two.get("/v1/models/m/versions/2/npz").data
    stop, bad, moves, failed = threading.Event(), [], [], []

    def churn():
        mover = app.test_client()
        try:
            while not stop.is_set():
                made = mover.post("/v1/models/m/versions", data=npz,
                                  content_type="application/octet-stream")
                new = made.json["version"]
                moved = mover.put("/v1/models/m/aliases/prod", json={"version": new})
                gone = mover.delete(f"/v1/models/m/versions/{new - 1}")
                assert (made.status_code, moved.status_code, gone.status_code) == (201, 200, 204)
                moves.append(new)
        except BaseException as exc:  # a churn that died would leave nothing to race
            failed.append(exc)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(600):
            detail = two.get("/v1/models/m").json
            listed = {v["version"] for v in detail["versions"]}
            named = {v["version"] for v in detail["versions"] if "prod" in v["aliases"]}
            prod = detail["aliases"].get("prod")
            if prod is not None and (prod not in listed or named != {prod}):
                bad.append(detail["aliases"])
            elif prod is None and named:
                bad.append(named)
    finally:
        stop.set()
        thread.join()
    assert failed == [] and len(moves) >= 10, (failed, len(moves))
    assert bad == []
