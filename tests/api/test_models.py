"""/v1/models: list, inspect, delete, export and import model versions."""

import io
import json
import zipfile

import numpy as np
import pytest

from service.nn.datasets import xor
from service.schemas import ModelDetail, ModelList, PredictResponse, VersionMeta

from .helpers import FAST, assert_problem, train

NPZ = "application/octet-stream"


@pytest.fixture
def model(client):
    """Train 'xor-demo' briefly (these tests need a model, not an accurate one); return its job."""
    job = train(client, "xor-demo", training=FAST)
    assert job.status == "succeeded", job.error
    return job.model_dump(mode="json")


def _export(client, name="xor-demo", version=1):
    r = client.get(f"/v1/models/{name}/versions/{version}/npz")
    assert r.status_code == 200, r.data[:300]
    return r.data


def _upload(client, data, name="xor-demo"):
    r = client.post(f"/v1/models/{name}/versions", data=data, content_type=NPZ)
    assert r.status_code == 201, r.json
    return VersionMeta.model_validate(r.json)


def _probabilities(client, path):
    x, _ = xor()
    r = client.post(f"{path}/predict", json={"points": x.tolist()})
    assert r.status_code == 200, r.json
    return [p.probability for p in PredictResponse.model_validate(r.json).predictions]


def _rewrite(data, **changes):
    """Return .npz bytes of data with members replaced (array) or dropped (None)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_list_is_empty_on_an_empty_store(client):
    r = client.get("/v1/models")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert ModelList.model_validate(r.json).models == []


def test_list_shows_name_latest_versions_and_metrics(client, model):
    _upload(client, _export(client))

    r = client.get("/v1/models")

    assert r.status_code == 200
    (summary,) = ModelList.model_validate(r.json).models
    assert (summary.name, summary.latest, summary.versions) == ("xor-demo", 2, 2)
    assert summary.metrics == client.get("/v1/models/xor-demo/versions/2").json["metrics"]
    assert summary.metrics["epochs"] == 200


def test_get_model_lists_each_version_with_its_metadata(client, model):
    r = client.get("/v1/models/xor-demo")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    detail = ModelDetail.model_validate(r.json)
    assert detail.name == "xor-demo"
    (meta,) = detail.versions
    assert meta.version == 1
    assert meta.corrupt is None
    assert meta.name == "xor-demo"
    assert meta.architecture == {"layers": [2, 4, 4, 1], "activation": "sigmoid",
                                 "output_activation": "sigmoid", "bias": True}
    assert meta.dataset == {"kind": "xor", "n": 21, "class_balance": {"0": 11, "1": 10}}
    assert meta.metrics == model["result"]["metrics"]
    assert meta.training["epochs"] == 200
    assert len(meta.sha256) == 64


def test_get_version_answers_that_versions_metadata(client, model):
    listed = client.get("/v1/models/xor-demo").json["versions"][0]

    r = client.get("/v1/models/xor-demo/versions/1")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert VersionMeta.model_validate(r.json).version == 1
    assert r.json == listed


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/v1/models/nope", "model 'nope' not found"),
        ("/v1/models/nope/versions/1", "model 'nope' version 1 not found"),
        ("/v1/models/xor-demo/versions/2", "model 'xor-demo' version 2 not found"),
        ("/v1/models/xor-demo/versions/2/npz", "model 'xor-demo' version 2 not found"),
    ],
)
def test_unknown_model_or_version_is_404(client, model, path, detail):
    problem = assert_problem(client.get(path), 404, "Model Not Found")

    assert problem.detail == detail


# 1 in Arabic-Indic, fullwidth and Devanagari digits, and with leading zeros
@pytest.mark.parametrize("spelling", ["\u0661", "\uff11", "\u0967", "01", "001"])
def test_a_version_is_named_in_ascii_digits_only(client, model, spelling):
    # Werkzeug's int converter matched any Unicode digit, which int() reads: version 1
    # answered under each of these names, on /v1 and /v2
    for path in (f"/v1/models/xor-demo/versions/{spelling}",
                 f"/v2/models/xor-demo/versions/{spelling}"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
    assert client.get("/v1/models/xor-demo/versions/1").status_code == 200


def test_delete_version_removes_only_that_version(client, model):
    _upload(client, _export(client))

    r = client.delete("/v1/models/xor-demo/versions/1")

    assert r.status_code == 204
    assert r.data == b"" and "Content-Type" not in r.headers  # no content, no type
    assert_problem(client.get("/v1/models/xor-demo/versions/1"), 404, "Model Not Found")
    assert [v["version"] for v in client.get("/v1/models/xor-demo").json["versions"]] == [2]
    assert client.post("/v1/models/xor-demo/predict", json={"x1": 0, "x2": 1}).json[
        "version"] == 2
    assert_problem(client.delete("/v1/models/xor-demo/versions/1"), 404, "Model Not Found")


def test_deleting_the_last_version_removes_the_model(client, model):
    assert client.delete("/v1/models/xor-demo/versions/1").status_code == 204

    assert_problem(client.get("/v1/models/xor-demo"), 404, "Model Not Found")
    assert client.get("/v1/models").json == {"models": []}


def test_delete_model_removes_every_version(client, model):
    _upload(client, _export(client))

    r = client.delete("/v1/models/xor-demo")

    assert r.status_code == 204
    assert r.data == b""
    assert_problem(client.get("/v1/models/xor-demo"), 404, "Model Not Found")
    assert_problem(client.get("/v1/models/xor-demo/versions/2"), 404, "Model Not Found")
    assert_problem(client.post("/v1/models/xor-demo/predict", json={"x1": 0, "x2": 0}), 404)
    assert client.get("/v1/models").json == {"models": []}
    assert_problem(client.delete("/v1/models/xor-demo"), 404, "Model Not Found")


def test_export_is_a_safe_npz_download(client, model):
    r = client.get("/v1/models/xor-demo/versions/1/npz")

    assert r.status_code == 200
    assert r.mimetype == NPZ
    assert r.headers["Content-Disposition"] == 'attachment; filename="xor-demo-v1.npz"'
    with np.load(io.BytesIO(r.data), allow_pickle=False) as npz:
        assert set(npz.files) == {"meta", "train_x", "train_y", "W0", "b0", "W1", "b1", "W2",
                                  "b2"}
        assert npz["W0"].shape == (2, 4)
        assert npz["W2"].shape == (4, 1)
        meta = json.loads(npz["meta"].item())
        x, y = xor()
        np.testing.assert_array_equal(npz["train_x"], x)
        np.testing.assert_array_equal(npz["train_y"], y)
    assert (meta["name"], meta["version"]) == ("xor-demo", 1)


@pytest.mark.parametrize("form", ["raw", "multipart"])
def test_upload_makes_a_new_version_that_predicts_the_same(client, model, form):
    data = _export(client)
    if form == "raw":
        r = client.post("/v1/models/xor-demo/versions", data=data, content_type=NPZ)
    else:
        r = client.post("/v1/models/xor-demo/versions",
                        data={"file": (io.BytesIO(data), "m.npz")})

    assert r.status_code == 201, r.json
    assert r.mimetype == "application/json"
    meta = VersionMeta.model_validate(r.json)
    assert meta.version == 2
    assert meta.name == "xor-demo"
    assert r.headers["Location"] == "/v1/models/xor-demo/versions/2"
    assert client.get(r.headers["Location"]).json["version"] == 2
    assert (_probabilities(client, "/v1/models/xor-demo/versions/2")
            == _probabilities(client, "/v1/models/xor-demo/versions/1"))


def test_upload_under_another_name_starts_at_version_1(client, model):
    meta = _upload(client, _export(client), name="copy")

    assert (meta.name, meta.version) == ("copy", 1)
    assert _probabilities(client, "/v1/models/copy") == _probabilities(client,
                                                                       "/v1/models/xor-demo")


def _with_extra_member(data):
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("evil.npy", b"x")
    return out.getvalue()


_BAD_FILES = {
    "garbage": lambda data: b"this is not a zip file",
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "extra member": _with_extra_member,
    "missing member": lambda data: _rewrite(data, train_y=None),
    "tampered weights": lambda data: _rewrite(data, W0=np.full((2, 4), 3.0)),
    "wrong shape": lambda data: _rewrite(data, W0=np.zeros((3, 4))),
    "pickled object": lambda data: _rewrite(data, train_x=np.array([object()] * 21)),
    "non-finite points": lambda data: _rewrite(data, train_x=np.full((21, 2), np.nan)),
}


@pytest.mark.parametrize("damage", sorted(_BAD_FILES))
def test_upload_of_an_invalid_file_is_422_and_stores_nothing(client, model, damage):
    data = _BAD_FILES[damage](_export(client))

    r = client.post("/v1/models/xor-demo/versions", data=data, content_type=NPZ)

    problem = assert_problem(r, 422, "Invalid Model File", "uploaded model file is invalid: ")
    assert problem.reason
    assert client.get("/v1/models").json["models"][0]["versions"] == 1


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_upload_with_a_wrong_content_type_is_415(client, model, content_type):
    r = client.post("/v1/models/xor-demo/versions", data=_export(client),
                    content_type=content_type)

    assert_problem(r, 415, "Unsupported Media Type")


def test_multipart_upload_without_a_file_part_is_400(client, model):
    r = client.post("/v1/models/xor-demo/versions",
                    data={"other": (io.BytesIO(_export(client)), "m.npz")})

    assert_problem(r, 400, "Bad Request", "'file' part")


def test_multipart_upload_with_two_file_parts_is_400_and_saves_nothing(client, model):
    npz = _export(client)  # the first part was kept, silently
    r = client.post("/v1/models/xor-demo/versions",
                    data={"file": [(io.BytesIO(npz), "a.npz"), (io.BytesIO(npz), "b.npz")]})

    assert_problem(r, 400, "Bad Request", "2 'file' parts")
    assert [v["version"] for v in client.get("/v1/models/xor-demo").json["versions"]] == [1]


def test_a_file_part_without_a_filename_is_named_not_taken_for_none(client, model):
    npz = _export(client)  # curl -F 'file=<m.npz': a form field, not a file
    r = client.post("/v1/models/xor-demo/versions", data={"file": npz.decode("latin-1")},
                    content_type="multipart/form-data")
    assert_problem(r, 400, "Bad Request", "the 'file' part has no filename")
    r = client.post("/v1/models/xor-demo/versions",  # was 201, the field silently dropped
                    data={"file": ["abc", (io.BytesIO(npz), "m.npz")]})
    assert_problem(r, 400, "Bad Request", "2 'file' parts")
    assert [v["version"] for v in client.get("/v1/models/xor-demo").json["versions"]] == [1]


def test_a_damaged_stored_version_is_reported_corrupt_not_served(client, settings, model):
    _upload(client, _export(client))
    path = settings.store_dir / "xor-demo" / "1.npz"
    path.write_bytes(path.read_bytes()[:100])

    detail = ModelDetail.model_validate(client.get("/v1/models/xor-demo").json)
    assert detail.versions[0].version == 1
    assert detail.versions[0].corrupt
    assert detail.versions[1].corrupt is None
    for r in (client.get("/v1/models/xor-demo/versions/1"),
              client.get("/v1/models/xor-demo/versions/1/npz"),
              client.post("/v1/models/xor-demo/versions/1/predict", json={"x1": 0, "x2": 0})):
        assert_problem(r, 409, "Corrupt Model", "model 'xor-demo' version 1 is corrupt: ")
        assert str(settings.store_dir) not in r.get_data(as_text=True)
    assert client.post("/v1/models/xor-demo/predict", json={"x1": 0, "x2": 0}).status_code == 200


def test_a_folder_named_like_a_version_is_a_corrupt_version_in_every_answer(client, model,
                                                                            settings):
    """GET of version 3 was a 503 while the list left it out; now both say corrupt (409)."""
    (settings.store_dir / "xor-demo" / "3.npz").mkdir()

    assert_problem(client.get("/v1/models/xor-demo/versions/3"), 409, "Corrupt Model",
                   "model 'xor-demo' version 3 is corrupt: not a file")
    assert_problem(client.post("/v1/models/xor-demo/predict", json={"x1": 0, "x2": 1}), 409)
    versions = ModelDetail.model_validate(client.get("/v1/models/xor-demo").json).versions
    assert [(v.version, v.corrupt) for v in versions] == [(1, None), (3, "not a file")]
    listed = ModelList.model_validate(client.get("/v1/models").json).models[0]
    assert (listed.latest, listed.corrupt) == (3, "not a file")
    assert client.delete("/v1/models/xor-demo/versions/3").status_code == 204
    assert client.get("/v1/models/xor-demo/versions/1").status_code == 200
