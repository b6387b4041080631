"""Extreme inputs: far coordinates, overflowing numbers, oversized uploaded networks."""

import io
import json

import numpy as np
import pytest

from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store.npzfile import weights_sha256

from .helpers import assert_problem, train

NPZ = "application/octet-stream"


def _npz(model, edit=lambda text: text, **meta_changes):
    """Return the bytes of a model file for model, its meta changed as given (and its JSON
    text by edit)."""
    arrays, meta = model.to_arrays()
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    meta.update(format=1, name="m", version=1, created_at="2026-01-01T00:00:00+00:00",
                dataset={"kind": "points"}, metrics={"loss": 0.1, "accuracy": 1.0},
                history={"epoch": [0], "loss": [0.1], "accuracy": [1.0]},
                sha256=weights_sha256(arrays), points_stored=2, points_sampled=False)
    meta.update(meta_changes)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(edit(json.dumps(meta))), train_x=x, train_y=np.array([0.0, 1.0]),
             **arrays)
    return buffer.getvalue()


def _model(hidden=(4, 4), **arch):
    x, y = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    model, _ = Model.train(Architecture((2, *hidden, 1), **arch), x, y,
                           TrainingConfig(epochs=2, loss="mse"))
    return model


@pytest.mark.parametrize("point", [[1.7e308, 1.7e308], [1e6 + 1, 0], [0, -2e6]])
def test_coordinates_beyond_a_million_are_refused(client, point):
    train(client, "xor-demo", training={"epochs": 20})
    r = client.post("/v1/models/xor-demo/predict", json={"points": [point]})
    problem = assert_problem(r, 422)
    assert problem.errors[0]["loc"][:2] == ["points", 0]


def test_training_points_beyond_a_million_are_refused(client):
    body = {"model": "far", "dataset": {"kind": "points", "points": [[0, 0], [1.7e308, 1]],
                                        "labels": [0, 1]}}
    problem = assert_problem(client.post("/v1/trainings", json=body), 422)
    assert problem.errors[0]["loc"][:4] == ["dataset", "points", "points", 1]


def test_an_overflowing_output_is_a_422_not_a_500(client):
    model = _model(activation="identity", output_activation="identity")
    model.params["theta"][...] = 1e300  # finite weights whose products overflow
    r = client.post("/v1/models/huge/versions", data=_npz(model), content_type=NPZ)
    assert r.status_code == 201, r.json
    problem = assert_problem(client.post("/v1/models/huge/predict", json={"x1": 1, "x2": 1}),
                             422)
    assert "not a finite number" in problem.detail


def test_a_number_that_overflows_in_the_meta_is_refused(client, settings):
    data = _npz(_model(), edit=lambda text: text.replace('"loss": 0.1', '"loss": 1e999', 1))
    problem = assert_problem(client.post("/v1/models/m/versions", data=data, content_type=NPZ),
                             422, "Invalid Model File")
    assert "out of range" in problem.detail
    folder = settings.store_dir / "m"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1.npz").write_bytes(data)  # the same file dropped into the store
    listed = client.get("/v1/models").json["models"]
    assert listed[0]["name"] == "m" and "out of range" in listed[0]["corrupt"]
    assert client.get("/v1/models/m").json["versions"][0]["corrupt"]


def test_an_uploaded_network_over_the_size_limits_is_refused(make_client):
    client = make_client(max_hidden_units=8)
    problem = assert_problem(client.post("/v1/models/wide/versions",
                                         data=_npz(_model(hidden=(16,))), content_type=NPZ), 422)
    assert "max_hidden_units" in problem.detail
    assert client.get("/v1/models").json == {"models": []}



@pytest.mark.parametrize("binary", [False, True])
def test_an_output_beyond_float32_is_a_400_on_v2_fp32_and_served_as_fp64(client, binary):
    model = _model(hidden=(1,), activation="identity", output_activation="identity")
    model.params["theta"][...] = 1e20  # the score, 3e40, is finite in float64, not float32
    assert client.post("/v1/models/wide/versions", data=_npz(model),
                       content_type=NPZ).status_code == 201
    body = {"inputs": [{"name": "points", "shape": [1, 2], "datatype": "FP32",
                        "data": [1, 1]}],
            "outputs": [{"name": "probability", "parameters": {"binary_data": binary}}]}
    r = client.post("/v2/models/wide/infer", json=body)
    assert r.status_code == 400 and "not a finite number in FP32" in r.json["error"]
    body["inputs"][0]["datatype"] = "FP64"
    r = client.post("/v2/models/wide/infer", json=body)
    assert r.status_code == 200
    served = client.post("/v1/models/wide/predict", json={"x1": 1, "x2": 1}).json
    assert 1e39 < served["predictions"][0]["probability"] < 1e41


@pytest.mark.parametrize(("changes", "field"), [
    ({"dataset": {"kind": "x\u0000y"}}, "dataset"),
    ({"dataset": {"kind": "points", "note": "\ud800"}}, "dataset"),
    ({"metrics": {"loss": 0.1, "accuracy": 1.0, "a\u0000": 1}}, "metrics"),
    ({"metrics": {"loss": 10**400, "accuracy": 1.0}}, "metrics"),
    ({"metrics": {"loss": 0.1, "accuracy": 1e308}}, "metrics"),  # a percentage of inf: a 500
    ({"metrics": {"loss": 0.1, "accuracy": 1.0, "validation_accuracy": -0.5}}, "metrics"),
])
def test_meta_no_store_or_page_can_keep_is_refused_at_upload(client, changes, field):
    r = client.post("/v1/models/odd/versions", data=_npz(_model(), **changes), content_type=NPZ)
    problem = assert_problem(r, 422, "Invalid Model File")
    assert problem.errors[0]["loc"][:3] == ["body", "meta", field], problem.errors
    listed = client.get("/v1/models")  # nothing kept: every list still works, without it
    assert listed.status_code == 200 and "odd" not in {m["name"] for m in listed.json["models"]}
    assert client.get("/dashboard/models").status_code == 200
    assert_problem(client.get("/v1/models/odd"), 404)


def test_weights_that_overflow_the_models_dtype_are_refused_at_upload(client):
    model = Model.train(Architecture((2, 4, 1)), np.array([[0.0, 0.0], [1.0, 1.0]]),
                        np.array([0.0, 1.0]), TrainingConfig(epochs=2, dtype="float32"))[0]
    arrays, meta = model.to_arrays()
    arrays = {k: v.astype(np.float64) for k, v in arrays.items()}
    arrays["W0"][0, 0] = 1e300  # finite as sent, inf once kept as the meta's float32
    meta.update(format=1, name="m", version=1, created_at="2026-01-01T00:00:00+00:00",
                dataset={"kind": "points"}, metrics={"loss": 0.1, "accuracy": 1.0},
                history={"epoch": [0], "loss": [0.1], "accuracy": [1.0]},
                sha256=weights_sha256(arrays), points_stored=2, points_sampled=False)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), train_x=np.array([[0.0, 0.0], [1, 1]]),
             train_y=np.array([0.0, 1.0]), **arrays)
    r = client.post("/v1/models/f32/versions", data=buffer.getvalue(), content_type=NPZ)
    problem = assert_problem(r, 422, "Invalid Model File")
    assert "W0 has non-finite values in float32" in problem.detail
    assert client.get("/v1/models/f32").status_code == 404  # no version that 409s on every read


def test_a_stored_metric_past_float_range_is_shown_not_a_500(make_client, tmp_path):
    # uploads refuse it now; a version kept before that (or written by hand) still lists
    client = make_client()
    assert client.post("/v1/models/old/versions", data=_npz(_model()),
                       content_type=NPZ).status_code == 201
    path = tmp_path / "store" / "old" / "1.npz"
    with np.load(path) as f:
        members = {k: f[k] for k in f.files}
    meta = json.loads(members["meta"].item())
    meta["metrics"].update(loss=10**400, accuracy=10**400, seconds=10**400)
    np.savez(path, **{**members, "meta": np.array(json.dumps(meta))})
    r = client.get("/dashboard/models")  # its card too
    assert r.status_code == 200 and r.get_data(as_text=True).count("n/a") >= 3
