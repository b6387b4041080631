"""/v2 refusals: the protocol's {"error": message} (never problem+json, never a 500)."""

import json

import numpy as np
import pytest

from service import create_app
from service.settings import Settings

from .helpers import FAST, train

INFER = "/v2/models/xor/infer"
HEADER = "Inference-Header-Content-Length"
FOUR = [0.1, 0.9, 0.5, 0.5]


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    """A client with model "xor" and small limits: 1,000 points, 64 KiB bodies."""
    settings = Settings(store_dir=tmp_path_factory.mktemp("v2err") / "store",
                        max_predict_points=1000, max_body_bytes=65536)
    app = create_app(settings)
    client = app.test_client()
    assert train(client, "xor", training=FAST).status == "succeeded"
    yield client
    app.extensions["nnserve"].stop()


def refused(r, status, *words):
    """Check r is the protocol's error object with status; return its message."""
    assert r.status_code == status, r.data[:300]
    assert r.mimetype == "application/json"
    body = r.json
    assert set(body) == {"error"} and isinstance(body["error"], str)
    for word in words:
        assert word.lower() in body["error"].lower(), body["error"]
    assert "Traceback" not in body["error"]
    return body["error"]


def tensor(**changes):
    return {"name": "points", "shape": [2, 2], "datatype": "FP64", "data": FOUR, **changes}


def doc(*inputs, **extra):
    return {"inputs": list(inputs) or [tensor()], **extra}


JSON_CASES = {
    "no inputs": ({"inputs": []}, "inputs"),
    "inputs missing": ({"id": "x"}, "inputs: field required"),
    "wrong shape": (doc(tensor(shape=[4])), "shape [n, 2]"),
    "three columns": (doc(tensor(shape=[1, 3], data=[1, 2, 3])), "shape [n, 2]"),
    "rank 3": (doc(tensor(shape=[1, 2, 2])), "shape [n, 2]"),
    "zero rows": (doc(tensor(shape=[0, 2], data=[])), "n >= 1"),
    "huge rows": (doc(tensor(shape=[2**62, 2])), "max_predict_points"),
    "over the limit": (doc(tensor(shape=[1001, 2], data=[0.5] * 2002)), "max_predict_points"),
    "negative dimension": (doc(tensor(shape=[-2, 2])), "greater than or equal to 0"),
    "shape of strings": (doc(tensor(shape=["2", "2"])), "shape"),
    "shape of bools": (doc(tensor(shape=[True, 2])), "shape"),
    "count not the product": (doc(tensor(data=[0.1, 0.2, 0.3])), "3 elements", "needs 4"),
    "nested ragged": (doc(tensor(data=[[0.1, 0.2, 0.3], [0.4]])), "rows of 2 numbers"),
    "nested too deep": (doc(tensor(data=[[[0.1, 0.2]], [[0.3, 0.4]]])), "rows of 2"),
    "unknown datatype": (doc(tensor(datatype="FLOAT99")), "unknown datatype"),
    "BYTES": (doc(tensor(datatype="BYTES", data=["a", "b", "c", "d"])), "BYTES", "FP32"),
    "BOOL": (doc(tensor(datatype="BOOL", data=[True, False, True, False])), "BOOL"),
    "INT64": (doc(tensor(datatype="INT64", data=[1, 0, 1, 0])), "INT64"),
    "unknown tensor": (doc(tensor(name="x")), "one input, 'points'"),
    "two inputs": (doc(tensor(), tensor()), "one input"),
    "strings as data": (doc(tensor(data=["0.1", "0.9", "0.5", "0.5"])), "numbers"),
    "bools as data": (doc(tensor(data=[True, 0.9, 0.5, 0.5])), "numbers"),
    "nulls as data": (doc(tensor(data=[None, 0.9, 0.5, 0.5])), "numbers"),
    "no data": (doc({"name": "points", "shape": [2, 2], "datatype": "FP64"}), "no data"),
    "data an object": (doc(tensor(data={"a": 1})), "no data"),
    "out of range": (doc(tensor(data=[0.1, 2e6, 0.5, 0.5])), "within +-1e+06"),
    "out of range fp32": (doc(tensor(datatype="FP32", data=[1e39, 0, 0, 0])), "within"),
    "unknown output": (doc(outputs=[{"name": "logits"}]), "outputs are one or more"),
    "output twice": (doc(outputs=[{"name": "label"}, {"name": "label"}]), "each once"),
    "binary_data not a bool": (doc(outputs=[{"name": "label", "parameters": {
        "binary_data": "yes"}}]), "binary_data"),
    "binary_data_output not a bool": (doc(parameters={"binary_data_output": 1}),
                                      "binary_data_output"),
    "id not a string": (doc(id=42), "id"),
    "inputs not a list": ({"inputs": {"name": "points"}}, "inputs"),
    "binary size and data": (doc(tensor(parameters={"binary_data_size": 32})),
                             "both data and binary_data_size"),
}


@pytest.mark.parametrize(("body", "words"), [(b, w) for b, *w in JSON_CASES.values()],
                         ids=JSON_CASES.keys())
def test_bad_json_requests_are_400(v2, body, words):
    refused(v2.post(INFER, json=body), 400, *words)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_400(v2, number):
    body = json.dumps(doc()).replace("0.9", number).encode()
    refused(v2.post(INFER, data=body), 400, "finite")


@pytest.mark.parametrize("number", [b"-9223372036854775809", b"1" + b"0" * 30])
def test_an_integer_past_64_bits_in_a_large_body_is_400(v2, number):
    """A body this size takes the bulk path, whose parser refuses such an integer with an
    error class of its own: the answer is still the general path's."""
    data = np.random.default_rng(5).uniform(-2, 2, 1800).round(6).tolist()
    raw = json.dumps(doc(tensor(shape=[900, 2], data=[0.25] + data[1:]))).encode()
    raw = raw.replace(b"[0.25,", b"[" + number + b",", 1)
    assert len(raw) > 16_384 and number in raw
    refused(v2.post(INFER, data=raw), 400, "within +-1e+06")


@pytest.mark.parametrize("raw", [b"", b"{", b'{"inputs": [}', b"\xff\xfe{}",
                                 b'{"inputs": [], "inputs": []}', b"[" * 60_000],
                         ids=["empty", "open", "broken", "not utf-8", "duplicate", "deep"])
def test_malformed_json_is_400(v2, raw):
    refused(v2.post(INFER, data=raw), 400, "malformed JSON")


def binary(size=None, raw=None, datatype="FP64", shape=(2, 2)):
    """Return (body, header length) of a binary request; size and raw default to the truth."""
    raw = np.asarray(FOUR, "<f8" if datatype == "FP64" else "<f4").tobytes() if raw is None \
        else raw
    header = json.dumps(doc({"name": "points", "shape": list(shape), "datatype": datatype,
                             "parameters": {"binary_data_size": len(raw) if size is None
                                            else size}})).encode()
    return header + raw, len(header)


BINARY_CASES = {
    "truncated": (lambda: binary(raw=bytes(20), size=32), None, "20 bytes follow", "32"),
    "one byte short": (lambda: binary(raw=bytes(31), size=32), None, "31 bytes follow"),
    "extra bytes": (lambda: binary(raw=bytes(40), size=32), None, "40 bytes follow"),
    "size not the shape": (lambda: binary(size=16), None, "binary_data_size 16 is not"),
    "fp32 size for fp64": (lambda: binary(raw=bytes(16), datatype="FP64"), None, "is not 2 x 2"),
    "negative size": (lambda: binary(size=-32), None, "greater than or equal to 0"),
    "size a string": (lambda: binary(size="32"), None, "binary_data_size"),
    "size a float": (lambda: binary(size=32.0), None, "binary_data_size"),
    "header longer than body": (lambda: binary(), lambda n: str(n + 10**6), "longer than the body"),
    "header not a number": (lambda: binary(), lambda n: "12abc", "not a byte count"),
    "header negative": (lambda: binary(), lambda n: "-5", "not a byte count"),
    "header empty": (lambda: binary(), lambda n: "", "not a byte count"),
    "header huge": (lambda: binary(), lambda n: "9" * 5000, "longer than the body"),
    "header cuts the JSON": (lambda: binary(), lambda n: str(n - 3), "malformed JSON"),
    "header too short": (lambda: binary(), lambda n: "0", "malformed JSON"),
    "bytes after a JSON request": (lambda: (json.dumps(doc()).encode() + b"\x00" * 8,
                                            len(json.dumps(doc()))), None,
                                   "8 bytes follow the JSON header but no input is binary"),
    "non-finite binary": (lambda: binary(raw=np.array([np.nan, 0, 0, 0], "<f8").tobytes()),
                          None, "finite"),
    "huge shape binary": (lambda: binary(shape=(2**40, 2)), None, "max_predict_points"),
    "zero shape binary": (lambda: binary(raw=b"", shape=(0, 2)), None, "n >= 1"),
    "BOOL binary": (lambda: _typed("BOOL", bytes([1, 0, 1, 0])), None, "BOOL"),
    "BYTES binary": (lambda: _typed("BYTES", b"\x01\x00\x00\x00a" * 4), None, "BYTES"),
}


def _typed(datatype, raw):
    header = json.dumps(doc({"name": "points", "shape": [2, 2], "datatype": datatype,
                             "parameters": {"binary_data_size": len(raw)}})).encode()
    return header + raw, len(header)


@pytest.mark.parametrize(("make", "header", "words"),
                         [(m, h, w) for m, h, *w in BINARY_CASES.values()],
                         ids=BINARY_CASES.keys())
def test_bad_binary_requests_are_400(v2, make, header, words):
    body, length = make()
    value = str(length) if header is None else header(length)
    refused(v2.post(INFER, data=body, headers={HEADER: value}), 400, *words)


def test_over_the_body_limit_is_413(v2):
    body, length = binary(raw=bytes(70_000), size=70_000)
    refused(v2.post(INFER, data=body, headers={HEADER: str(length)}), 413, "65536")


def test_a_compressed_body_is_415(v2):
    refused(v2.post(INFER, data=b"\x1f\x8b", headers={"Content-Encoding": "gzip"}), 415,
            "content-encoding")


@pytest.mark.parametrize(("method", "path"), [("get", INFER), ("post", "/v2/health/live"),
                                              ("delete", "/v2")])
def test_wrong_methods_are_405_with_allow(v2, method, path):
    r = getattr(v2, method)(path)
    refused(r, 405)
    assert r.headers["Allow"]


@pytest.mark.parametrize("path", ["/v2/models/nope/infer", "/v2/models/xor/versions/7/infer"])
def test_unknown_model_or_version_is_404(v2, path):
    refused(v2.post(path, json=doc()), 404, "not found")


@pytest.mark.parametrize("path", ["/v2/models/BAD/infer", "/v2/models/xor/versions/0/infer"])
def test_an_invalid_name_or_version_is_400(v2, path):
    refused(v2.post(path, json=doc()), 400)


def test_a_corrupt_version_is_409_everywhere(make_client, tmp_path):
    client = make_client()
    assert train(client, "m", training=FAST).status == "succeeded"
    (tmp_path / "store" / "m" / "1.npz").write_bytes(b"PK\x03\x04 not a zip")

    for r in (client.get("/v2/models/m"), client.get("/v2/models/m/ready"),
              client.post("/v2/models/m/infer", json=doc())):
        refused(r, 409, "corrupt")


def test_v1_keeps_its_problems(v2):
    r = v2.post("/v1/models/xor/predict", json={"points": [[0, 1, 2]]})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"


# ----- the rules /v1 has: the token, metrics, request ids -----

TOKEN = "s3cret"
READS = [("get", "/v2"), ("get", "/v2/"), ("get", "/v2/models/xor"),
         ("get", "/v2/models/xor/versions/1"), ("get", "/v2/models/xor/ready"),
         ("get", "/v2/models/xor/versions/1/ready"), ("post", INFER),
         ("post", "/v2/models/xor/versions/1/infer")]


@pytest.mark.parametrize(("method", "path"), READS)
def test_protect_reads_covers_v2_reads_and_inference(make_client, method, path):
    client = make_client(api_token=TOKEN, protect_reads=True)
    assert train(client, "xor", training=FAST,
                 headers={"Authorization": f"Bearer {TOKEN}"}).status == "succeeded"
    kwargs = {"json": doc()} if method == "post" else {}

    r = getattr(client, method)(path, **kwargs)

    refused(r, 401, "Authorization: Bearer <token>")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="nnserve"'
    ok = getattr(client, method)(path, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs)
    assert ok.status_code == 200, ok.data[:300]


@pytest.mark.parametrize("protect_reads", [False, True])
def test_health_stays_open_and_reads_follow_protect_reads(make_client, protect_reads):
    client = make_client(api_token=TOKEN, protect_reads=protect_reads)

    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").status_code == (401 if protect_reads else 200)


def test_metrics_count_v2_routes_under_their_own_labels(v2):
    v2.post(INFER, json=doc())
    v2.post(INFER, json={"inputs": []})
    v2.get("/v2/health/live")

    text = v2.get("/metrics").get_data(as_text=True)

    for route, status in (("/v2/models/<name>/infer", "200"),
                          ("/v2/models/<name>/infer", "400"), ("/v2/health/live", "200")):
        assert (f'nnserve_http_requests_total{{method="{"GET" if "health" in route else "POST"}"'
                f',route="{route}",status="{status}"}}') in text, route


def test_request_ids_are_echoed_or_made(v2):
    r = v2.post(INFER, json=doc(), headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = v2.post(INFER, json={"inputs": []}).headers["X-Request-ID"]
    assert len(made) == 32 and made != "abc-123"
