"""/v2 through the protocol's own clients against real gunicorn: tritonclient and KServe's.

Both talk to a 3-worker server unmodified; predictions must equal /v1's (labels
exactly, FP64 probabilities to 1e-12).
"""

import asyncio
import itertools

import numpy as np
import pytest
import requests
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from .server import Server

pytestmark = pytest.mark.e2e

POINTS = np.random.default_rng(16).uniform(-0.5, 1.5, size=(257, 2))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A 3-worker server with "xor" at versions 1 and 2."""
    server = Server(tmp_path_factory.mktemp("v2") / "store", workers=3).start()
    for epochs in (200, 5000):
        r = requests.post(f"{server.url}/v1/trainings", params={"wait": 30}, timeout=40,
                          json={"model": "xor", "dataset": {"kind": "xor"},
                                "training": {"epochs": epochs}})
        assert r.json()["status"] == "succeeded", r.text
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(srv):
    """tritonclient.http, given host:port (no scheme), as its documentation says."""
    with triton.InferenceServerClient(url=f"127.0.0.1:{srv.port}") as c:
        yield c


def v1(srv, points, version=None):
    """Return (labels, probabilities) of /v1's predict for points (n, 2)."""
    path = "/v1/models/xor" + (f"/versions/{version}" if version else "") + "/predict"
    r = requests.post(srv.url + path, json={"points": points.tolist()}, timeout=10)
    preds = r.json()["predictions"]
    return np.array([p["label"] for p in preds]), np.array([p["probability"] for p in preds])


def triton_inputs(points, datatype, binary):
    tensor = triton.InferInput("points", list(points.shape), datatype)
    tensor.set_data_from_numpy(points.astype(np.float32 if datatype == "FP32" else np.float64),
                               binary_data=binary)
    return [tensor]


def test_health_and_server_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "nnserve" and "binary_tensor_data" in meta["extensions"]


def test_model_readiness_latest_pinned_and_unknown(client):
    assert client.is_model_ready("xor")
    assert client.is_model_ready("xor", "1") and client.is_model_ready("xor", "2")
    assert not client.is_model_ready("xor", "3")
    assert not client.is_model_ready("nope")


def test_model_metadata(client):
    meta = client.get_model_metadata("xor")
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "nnserve_numpy"
    assert meta["inputs"] == [{"name": "points", "datatype": "FP64", "shape": [-1, 2]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probability"]
    assert client.get_model_metadata("xor", "1")["name"] == "xor"


@pytest.mark.parametrize(("datatype", "binary_in", "binary_out"),
                         list(itertools.product(["FP32", "FP64"], [False, True],
                                                [False, True])))
def test_infer_equals_v1_in_every_form(srv, client, datatype, binary_in, binary_out):
    outputs = [triton.InferRequestedOutput(name, binary_data=binary_out)
               for name in ("label", "probability")]

    result = client.infer("xor", triton_inputs(POINTS, datatype, binary_in), outputs=outputs)

    points = POINTS.astype(np.float32).astype(np.float64) if datatype == "FP32" else POINTS
    labels, probabilities = v1(srv, points)
    assert result.as_numpy("label").dtype == np.int64
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    probability = result.as_numpy("probability")
    assert probability.dtype == (np.float32 if datatype == "FP32" else np.float64)
    np.testing.assert_allclose(probability, probabilities, rtol=0,
                               atol=1e-7 if datatype == "FP32" else 1e-12)
    assert result.get_response()["model_version"] == "2"


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_a_large_json_request_equals_its_binary_form(client, datatype):
    """2,000 points as JSON (60 KB: the bulk path, tensors._bulk) and as binary (no JSON to
    read) get the same answer."""
    points = np.random.default_rng(17).uniform(-0.5, 1.5, size=(2000, 2))
    outputs = [triton.InferRequestedOutput(name, binary_data=False)
               for name in ("label", "probability")]
    as_json, as_binary = (client.infer("xor", triton_inputs(points, datatype, binary),
                                       outputs=outputs) for binary in (False, True))
    for name in ("label", "probability"):
        np.testing.assert_array_equal(as_json.as_numpy(name), as_binary.as_numpy(name))
    assert 0 < as_json.as_numpy("label").sum() < len(points)


def test_the_default_call_is_binary_both_ways_and_echoes_the_id(srv, client):
    result = client.infer("xor", triton_inputs(POINTS, "FP64", True), request_id="req-7")

    response = result.get_response()
    assert response["id"] == "req-7"
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    np.testing.assert_array_equal(result.as_numpy("label"), v1(srv, POINTS)[0])


def test_a_pinned_version_and_one_output(srv, client):
    result = client.infer("xor", triton_inputs(POINTS, "FP64", True), model_version="1",
                          outputs=[triton.InferRequestedOutput("probability")])

    assert result.get_response()["model_version"] == "1"
    assert result.as_numpy("label") is None
    np.testing.assert_allclose(result.as_numpy("probability"), v1(srv, POINTS, 1)[1],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize(("call", "status", "words"), [
    (lambda c: c.infer("nope", triton_inputs(POINTS, "FP64", True)), "404", "not found"),
    (lambda c: c.infer("xor", triton_inputs(POINTS, "FP64", True), model_version="9"), "404",
     "version 9 not found"),
    (lambda c: c.infer("xor", triton_inputs(POINTS[:, :1].copy(), "FP64", True)), "400",
     "shape [n, 2]"),
    (lambda c: c.infer("xor", [_bool_input()]), "400", "datatype 'BOOL'"),
    (lambda c: c.infer("xor", triton_inputs(np.full((2, 2), 5e6), "FP64", False)), "400",
     "within"),
    (lambda c: c.infer("xor", triton_inputs(POINTS, "FP64", True),
                       outputs=[triton.InferRequestedOutput("logits")]), "400", "outputs"),
    (lambda c: c.get_model_metadata("nope"), "404", "not found"),
])
def test_errors_raise_with_the_status_and_the_message(client, call, status, words):
    with pytest.raises(InferenceServerException) as raised:
        call(client)
    assert raised.value.status() == status
    assert words.lower() in raised.value.message().lower(), raised.value.message()


def _bool_input():
    tensor = triton.InferInput("points", [2, 2], "BOOL")
    tensor.set_data_from_numpy(np.array([[True, False], [False, True]]))
    return tensor


def test_the_asyncio_client(srv):
    async def run():
        async with triton_aio.InferenceServerClient(url=f"127.0.0.1:{srv.port}") as c:
            assert await c.is_server_live() and await c.is_model_ready("xor")
            tensor = triton_aio.InferInput("points", list(POINTS.shape), "FP64")
            tensor.set_data_from_numpy(POINTS)
            result = await c.infer("xor", [tensor])
            return result.as_numpy("label"), result.as_numpy("probability")

    labels, probabilities = asyncio.run(run())

    expected = v1(srv, POINTS)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_allclose(probabilities, expected[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_rest_client(srv, binary):
    kserve = pytest.importorskip("kserve")  # in the dev extra; installs on Python 3.11

    async def run():
        client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2"))
        try:
            live = await client.is_server_live(srv.url)
            ready = await client.is_server_ready(srv.url)
            model_ready = await client.is_model_ready(srv.url, "xor")
            tensor = kserve.InferInput("points", list(POINTS.shape), "FP64")
            tensor.set_data_from_numpy(POINTS, binary_data=binary)
            request = kserve.InferRequest(model_name="xor", infer_inputs=[tensor],
                                          request_id="k-1")
            response = await client.infer(srv.url, request, model_name="xor")
            return live, ready, model_ready, response
        finally:
            await client.close()

    live, ready, model_ready, response = asyncio.run(run())

    assert live is True and ready is True and model_ready is True
    assert response.id == "k-1" and response.model_name == "xor"
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    labels, probabilities = v1(srv, POINTS)
    np.testing.assert_array_equal(outputs["label"], labels)
    np.testing.assert_allclose(outputs["probability"], probabilities, rtol=0, atol=1e-12)
