"""/v2, the Open Inference Protocol, through Flask's test client: answers and their shapes."""

import json

import numpy as np
import pytest

from service import create_app
from service.inference.schemas import InferenceResponse, ModelMetadata
from service.settings import Settings

from .helpers import FAST, train

POINTS = [[0.1, 0.9], [0.5, 0.5], [0.9, 0.1], [0.25, 0.7]]
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    """A client whose store holds "xor" (two FP64 versions) and "xor32" (one FP32)."""
    app = create_app(Settings(store_dir=tmp_path_factory.mktemp("v2") / "store"))
    client = app.test_client()
    for model, training in (("xor", {}), ("xor", FAST), ("xor32", {"dtype": "float32"})):
        job = train(client, model, training=training)
        assert job.status == "succeeded", job.error
    yield client
    app.extensions["nnserve"].stop()


def request_body(points=POINTS, datatype="FP64", **extra):
    """Return a JSON inference request of points, flat."""
    data = np.asarray(points, np.float64).ravel().tolist()
    tensor = {"name": "points", "shape": [len(points), 2], "datatype": datatype, "data": data}
    return {"inputs": [tensor], **extra}


def binary_body(points=POINTS, datatype="FP64", outputs=None, **parameters):
    """Return (body, header length) of a request whose input is binary."""
    raw = np.asarray(points, "<f8" if datatype == "FP64" else "<f4").tobytes()
    tensor = {"name": "points", "shape": [len(points), 2], "datatype": datatype,
              "parameters": {"binary_data_size": len(raw)}}
    doc = {"inputs": [tensor]}
    if outputs is not None:
        doc["outputs"] = outputs
    if parameters:
        doc["parameters"] = parameters
    header = json.dumps(doc).encode()
    return header + raw, len(header)


def outputs_of(r):
    """Return ({name: array}, header) of an answer, JSON or binary."""
    assert r.status_code == 200, r.data[:300]
    length = r.headers.get(HEADER)
    body = r.data
    header = json.loads(body if length is None else body[:int(length)])
    InferenceResponse.model_validate(header)
    tail, found = body[int(length):] if length is not None else b"", {}
    dtypes = {"INT64": "<i8", "FP32": "<f4", "FP64": "<f8"}
    for out in header["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is None:
            found[out["name"]] = np.asarray(out["data"], dtypes[out["datatype"]])
        else:
            found[out["name"]] = np.frombuffer(tail[:size], dtypes[out["datatype"]])
            tail = tail[size:]
        assert out["shape"] == [len(found[out["name"]])]
    assert tail == b""
    return found, header


def v1_predictions(client, model="xor", points=POINTS, version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + "/predict"
    preds = client.post(path, json={"points": points}).json["predictions"]
    return [p["label"] for p in preds], np.array([p["probability"] for p in preds])


# ----- health and metadata -----


def test_health_live_and_ready(v2):
    assert v2.get("/v2/health/live").json == {"live": True}
    assert v2.get("/v2/health/ready").json == {"ready": True}


def test_not_ready_is_503_with_the_protocols_error(make_client, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("a file where the store should be")
    client = make_client(store_dir=not_a_directory, jobs_db=tmp_path / "jobs.sqlite3")

    r = client.get("/v2/health/ready")

    assert r.status_code == 503 and r.mimetype == "application/json"
    assert set(r.json) == {"error"} and r.json["error"].startswith("not ready: store: ")
    assert client.get("/v2/health/live").status_code == 200


def test_server_metadata_at_v2_and_v2_slash(v2):
    bare, slash = v2.get("/v2"), v2.get("/v2/")

    assert bare.status_code == slash.status_code == 200
    assert bare.json == slash.json
    assert bare.json["name"] == "nnserve" and "binary_tensor_data" in bare.json["extensions"]
    assert isinstance(bare.json["version"], str) and bare.json["version"]


def test_model_metadata_lists_versions_as_strings_and_the_signature(v2):
    meta = ModelMetadata.model_validate(v2.get("/v2/models/xor").json)

    assert meta.name == "xor" and meta.versions == ["1", "2"]
    assert meta.platform == "nnserve_numpy"
    assert [t.model_dump() for t in meta.inputs] == [
        {"name": "points", "datatype": "FP64", "shape": [-1, 2]}]
    assert [t.model_dump() for t in meta.outputs] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probability", "datatype": "FP64", "shape": [-1]}]
    assert v2.get("/v2/models/xor/versions/1").json == meta.model_dump()


def test_a_float32_model_says_fp32(v2):
    meta = v2.get("/v2/models/xor32").json
    assert meta["inputs"][0]["datatype"] == meta["outputs"][1]["datatype"] == "FP32"


@pytest.mark.parametrize("path", ["/v2/models/xor/ready", "/v2/models/xor/versions/1/ready",
                                  "/v2/models/xor/versions/2/ready"])
def test_model_ready(v2, path):
    assert v2.get(path).json == {"name": "xor", "ready": True}


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready",
                                  "/v2/models/xor/versions/3", "/v2/models/xor/versions/3/ready",
                                  "/v2/models/xor/versions/v1/ready", "/v2/nope"])
def test_unknown_models_versions_and_routes_are_404(v2, path):
    r = v2.get(path)

    assert r.status_code == 404 and r.mimetype == "application/json"
    assert set(r.json) == {"error"} and r.json["error"]


# ----- inference -----


@pytest.mark.parametrize("version", [None, 1, 2])
def test_json_inference_equals_v1(v2, version):
    path = "/v2/models/xor" + (f"/versions/{version}" if version else "") + "/infer"
    found, header = outputs_of(v2.post(path, json=request_body()))

    labels, probabilities = v1_predictions(v2, version=version)
    assert found["label"].tolist() == labels
    np.testing.assert_allclose(found["probability"], probabilities, rtol=0, atol=1e-12)
    assert header["model_name"] == "xor"
    assert header["model_version"] == str(version or 2)
    assert [o["name"] for o in header["outputs"]] == ["label", "probability"]
    assert [o["datatype"] for o in header["outputs"]] == ["INT64", "FP64"]


def test_nested_data_equals_flat(v2):
    nested = request_body()
    nested["inputs"][0]["data"] = POINTS

    assert v2.post("/v2/models/xor/infer", json=nested).data == \
        v2.post("/v2/models/xor/infer", json=request_body()).data


@pytest.mark.parametrize("binary_in", [False, True], ids=["json in", "binary in"])
@pytest.mark.parametrize("binary_out", [False, True, "label only"],
                         ids=["json out", "binary out", "label binary"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_every_combination_of_json_and_binary(v2, binary_in, binary_out, datatype):
    outputs = [{"name": "label", "parameters": {"binary_data": bool(binary_out)}},
               {"name": "probability",
                "parameters": {"binary_data": binary_out is True}}]
    if binary_in:
        body, length = binary_body(datatype=datatype, outputs=outputs)
        r = v2.post("/v2/models/xor/infer", data=body, headers={HEADER: str(length)})
    else:
        r = v2.post("/v2/models/xor/infer", json=request_body(datatype=datatype,
                                                              outputs=outputs))
    found, header = outputs_of(r)

    points = np.asarray(POINTS, np.float32 if datatype == "FP32" else np.float64)
    labels, probabilities = v1_predictions(v2, points=points.astype(np.float64).tolist())
    assert found["label"].tolist() == labels
    assert found["probability"].dtype == (np.float32 if datatype == "FP32" else np.float64)
    np.testing.assert_allclose(found["probability"], probabilities, rtol=0,
                               atol=1e-7 if datatype == "FP32" else 1e-12)
    assert (r.headers.get(HEADER) is not None) == bool(binary_out)
    assert r.mimetype == ("application/octet-stream" if binary_out else "application/json")


def test_binary_data_output_makes_every_output_binary_unless_one_says_not(v2):
    body, length = binary_body(binary_data_output=True)
    _, header = outputs_of(v2.post("/v2/models/xor/infer", data=body,
                                   headers={HEADER: str(length)}))
    assert all("binary_data_size" in o["parameters"] for o in header["outputs"])

    body, length = binary_body(binary_data_output=True, outputs=[
        {"name": "probability"}, {"name": "label", "parameters": {"binary_data": False}}])
    _, header = outputs_of(v2.post("/v2/models/xor/infer", data=body,
                                   headers={HEADER: str(length)}))
    assert [o["name"] for o in header["outputs"]] == ["probability", "label"]
    assert "binary_data_size" in header["outputs"][0]["parameters"]
    assert "data" in header["outputs"][1] and "parameters" not in header["outputs"][1]


@pytest.mark.parametrize("wanted", [["label"], ["probability"], ["probability", "label"]])
def test_outputs_select_and_order_the_answer(v2, wanted):
    body = request_body(outputs=[{"name": name} for name in wanted])
    _, header = outputs_of(v2.post("/v2/models/xor/infer", json=body))
    assert [o["name"] for o in header["outputs"]] == wanted


def test_id_is_echoed_and_extra_fields_are_ignored(v2):
    body = request_body(id="req-42", model_name="xor", model_version="9",
                        parameters={"priority": 3, "custom": {"a": 1}})
    body["inputs"][0]["parameters"] = {"note": "x"}

    _, header = outputs_of(v2.post("/v2/models/xor/infer", json=body))

    assert header["id"] == "req-42"
    _, without = outputs_of(v2.post("/v2/models/xor/infer", json=request_body()))
    assert "id" not in without


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain",
                                          "application/octet-stream"])
def test_content_type_decides_nothing(v2, content_type):
    body, length = binary_body()
    headers = {HEADER: str(length)} | ({"Content-Type": content_type} if content_type else {})
    found, _ = outputs_of(v2.post("/v2/models/xor/infer", data=body, headers=headers))
    assert found["label"].tolist() == v1_predictions(v2)[0]

    plain = json.dumps(request_body()).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    found, _ = outputs_of(v2.post("/v2/models/xor/infer", data=plain, headers=headers))
    assert found["label"].tolist() == v1_predictions(v2)[0]


def test_a_float32_model_answers_fp64_requests_in_fp64(v2):
    found, header = outputs_of(v2.post("/v2/models/xor32/infer", json=request_body()))

    labels, probabilities = v1_predictions(v2, model="xor32")
    assert found["label"].tolist() == labels
    np.testing.assert_allclose(found["probability"], probabilities, rtol=0, atol=1e-12)
    assert header["outputs"][1]["datatype"] == "FP64"


def test_many_points_in_binary_equal_v1(v2):
    points = np.random.default_rng(3).uniform(-2, 3, size=(5000, 2))
    body, length = binary_body(points, binary_data_output=True)

    found, _ = outputs_of(v2.post("/v2/models/xor/infer", data=body,
                                  headers={HEADER: str(length)}))

    labels, probabilities = v1_predictions(v2, points=points.tolist())
    assert found["label"].tolist() == labels
    np.testing.assert_allclose(found["probability"], probabilities, rtol=0, atol=1e-12)


def test_openapi_documents_v2_with_the_protocols_error_and_the_binary_form(v2):
    paths = v2.get("/openapi.json").json["paths"]

    for path in ("/v2", "/v2/", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}",
                 "/v2/models/{name}/versions/{version}/ready"):
        assert "get" in paths[path], path
    infer = paths["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json",
                                                    "application/octet-stream"}
    assert "Inference-Header-Content-Length" in infer["requestBody"]["description"]
    assert set(infer["responses"]["200"]["content"]) == {"application/json",
                                                         "application/octet-stream"}
    error = {"schema": {"$ref": "#/components/schemas/ProtocolError"}}
    for status in ("400", "404", "408", "413", "414", "431"):  # gunicorn's own too
        assert infer["responses"][status]["content"] == {"application/json": error}
    assert "422" not in infer["responses"]
