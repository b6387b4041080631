"""Errors: every refusal is an RFC 9457 problem naming what was wrong; no 500s, no leaks."""

import io
import json
import re
from urllib.parse import quote

import pytest
from flask import Response
from werkzeug.test import EnvironBuilder

from service import create_app
from service.schemas import Job
from service.settings import Settings

from .helpers import FAST, PROBLEM, assert_problem, train

JSON = "application/json"
XOR = {"model": "m", "dataset": {"kind": "xor"}}
POINTS = {"kind": "points", "points": [[0, 0], [0, 1], [1, 0], [1, 1]], "labels": [0, 1, 1, 0]}
BAD_NAMES = {
    "parent": "../x",
    "dot dot": "..",
    "upper": "UPPER",
    "cyrillic o": "x\u043er",
    "65 chars": "a" * 65,
    "empty": "",
    "hidden": ".x",
    "option": "-x",
    "slash": "a/b",
    "space": "a b",
    "nul": "a\x00b",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One client whose store holds model 'm', for the tests that only send refused requests."""
    app = create_app(Settings(store_dir=tmp_path_factory.mktemp("errors") / "store"))
    client = app.test_client()
    job = train(client, "m", training=FAST)
    assert job.status == "succeeded", job.error
    yield client
    app.extensions["nnserve"].stop()


def _job_count(client):
    return client.get("/v1/trainings").json["total"]


def _training(**sections):
    """Return the XOR training body of model 'm' with the given sections."""
    return {**XOR, **sections}


# ----- routing, methods, sizes, media types, syntax -----


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/nope", "/v1/models/m/versions/1/x"])
def test_unknown_route_is_404(shared, path):
    assert_problem(shared.get(path), 404, "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/v1/models", {"GET"}),
        ("patch", "/v1/trainings", {"GET", "POST"}),
        ("get", "/v1/models/m/predict", {"POST"}),
        ("post", "/healthz", {"GET"}),
        ("delete", "/v1/models/m/versions/1/npz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(shared, method, path, allowed):
    r = getattr(shared, method)(path)

    assert_problem(r, 405, "Method Not Allowed")
    assert allowed <= {m.strip() for m in r.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/v1/trainings", {"json": _training(dataset={**POINTS, "points": [[0.5, 0.5]] * 300})}),
        ("/v1/models/m/predict", {"json": {"points": [[0.5, 0.5]] * 300}}),
        ("/v1/models/m/versions", {"data": b"x" * 3000, "content_type": "application/zip"}),
        ("/v1/models/m/versions", {"data": {"file": (io.BytesIO(b"x" * 3000), "m.npz")}}),
    ],
    ids=["training", "predict", "upload", "multipart"],
)
def test_body_over_max_body_bytes_is_413(make_client, path, kwargs):
    client = make_client(max_body_bytes=2048)

    r = client.post(path, **kwargs)

    assert_problem(r, 413, "Request Entity Too Large",
                   "request body over the limit of 2048 bytes (NNSERVE_MAX_BODY_BYTES)")


@pytest.mark.parametrize("path", ["/v1/trainings", "/v1/models/m/predict"])
@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("text/plain", "'text/plain'"), (None, "'no content type'"),
     ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'")],
)
def test_body_not_sent_as_json_is_415(shared, path, content_type, shown):
    r = shared.post(path, data=json.dumps(XOR), content_type=content_type)

    assert_problem(r, 415, "Unsupported Media Type",
                   f"send the body as application/json (got {shown})")


@pytest.mark.parametrize("path", ["/v1/trainings", "/v1/models/m/predict"])
@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "malformed JSON: "),
        (b"{", "malformed JSON: "),
        (b"{'x1': 1}", "malformed JSON: "),
        (b'{"x1": 1,}', "malformed JSON: "),
        (b"\xff\xfe{}", "malformed JSON: "),
        (b"[" * 100_000, "malformed JSON: "),
        (b'{"a":' * 100_000, "malformed JSON: "),
        (b'{"model": "a", "model": "b"}', "duplicate key 'model'"),
        (b'{"points": [{"x1": 1, "x2": 2, "x1": 3}]}', "duplicate key 'x1'"),
    ],
    ids=["empty", "open", "single quotes", "trailing comma", "not utf-8", "deep arrays",
         "deep objects", "duplicate", "nested duplicate"],
)
def test_malformed_json_is_400(shared, path, raw, detail):
    r = shared.post(path, data=raw, content_type=JSON)

    assert_problem(r, 400, "Bad Request", detail)


def _post_environ(client, path, body, **environ):
    """Return the response to a POST of body whose WSGI environ is then changed by environ."""
    env = EnvironBuilder(path=path, method="POST", data=body, content_type=JSON).get_environ()
    env.update(environ)
    return Response.from_app(client.application, env)


def test_a_body_shorter_than_its_content_length_is_400(shared):
    body = b'{"x1": 0.5, "x2": 0.5}'

    r = _post_environ(shared, "/v1/models/m/predict", body, CONTENT_LENGTH="100")

    assert_problem(r, 400, "Bad Request", f"the body ended after {len(body)} of 100 bytes")


@pytest.mark.parametrize("limit", [None, 2048])
def test_a_chunked_body_is_read_whole_or_refused_over_the_limit(make_client, limit):
    client = make_client(**({} if limit is None else {"max_body_bytes": limit}))
    train(client, "m", training=FAST)
    points = [[0.5, 0.5]] * 300  # about 3,600 bytes
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}

    r = _post_environ(client, "/v1/models/m/predict", json.dumps({"points": points}).encode(),
                      **chunked)

    if limit is None:
        assert r.status_code == 200, r.json
        assert len(r.json["predictions"]) == 300
    else:
        assert_problem(r, 413, "Request Entity Too Large")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"x1": 0.5, "x2": 0.5}', "application/json; charset=utf-8"),
        ('{"x1": 0.5, "x2": 0.5}'.encode("utf-8-sig"), JSON),
        ('{"x1": 0.5, "x2": 0.5}'.encode("utf-16"), JSON),
    ],
    ids=["charset parameter", "utf-8 with BOM", "utf-16"],
)
def test_json_is_read_as_json_loads_reads_it(shared, body, content_type):
    r = shared.post("/v1/models/m/predict", data=body, content_type=content_type)

    assert r.status_code == 200, r.json
    assert len(r.json["predictions"]) == 1


# ----- validation: non-finite numbers, unknown fields, names -----


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
@pytest.mark.parametrize(
    ("template", "loc"),
    [
        ('{{"points": [[0.5, {n}]]}}', ["points", 0, 1]),
        ('{{"points": [[0, 0], [{n}, 0.5]]}}', ["points", 1, 0]),
        ('{{"points": [{{"x1": {n}, "x2": 0.5}}]}}', ["points", 0, 0]),
        ('{{"x1": 0.5, "x2": {n}}}', ["points", 0, 1]),
        ('{{"points": [[0.5, 0.5]], "threshold": {n}}}', ["threshold"]),
    ],
    ids=["pair", "second pair", "object", "single", "threshold"],
)
def test_non_finite_numbers_in_predictions_are_422(shared, number, template, loc):
    r = shared.post("/v1/models/m/predict", data=template.format(n=number), content_type=JSON)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == loc
    assert problem.detail.startswith(".".join(map(str, loc)) + ": ")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309"])
@pytest.mark.parametrize(
    ("template", "loc"),
    [
        ('"training": {{"learning_rate": {n}}}', ["training", "learning_rate"]),
        ('"training": {{"epochs": {n}}}', ["training", "epochs"]),
        ('"training": {{"momentum": {n}}}', ["training", "momentum"]),
        ('"network": {{"seed": {n}}}', ["network", "seed"]),
        ('"dataset": {{"kind": "circle", "noise": {n}}}', ["dataset", "circle", "noise"]),
        ('"dataset": {{"kind": "points", "points": [[0, 0], [1, {n}]], "labels": [0, 1]}}',
         ["dataset", "points", "points", 1, 1]),
    ],
    ids=["learning_rate", "epochs", "momentum", "seed", "noise", "points"],
)
def test_non_finite_numbers_in_trainings_are_422(shared, number, template, loc):
    raw = '{"model": "m", "dataset": {"kind": "xor"}, ' + template.format(n=number) + "}"
    raw = raw.replace('"dataset": {"kind": "xor"}, "dataset"', '"dataset"')

    jobs = _job_count(shared)

    r = shared.post("/v1/trainings", data=raw, content_type=JSON)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == loc
    assert _job_count(shared) == jobs


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**XOR, "colour": "red"}, ["colour"]),
        (_training(training={"epochs": 10, "epoch": 10}), ["training", "epoch"]),
        (_training(network={"layers": [2, 1]}), ["network", "layers"]),
        (_training(dataset={"kind": "xor", "n": 10}), ["dataset", "xor", "n"]),
        (_training(dataset={"kind": "lines"}), ["dataset"]),
        ({"dataset": {"kind": "xor"}}, ["model"]),
        ({"model": "m"}, ["dataset"]),
    ],
)
def test_unknown_or_missing_training_fields_are_422(shared, body, loc):
    problem = assert_problem(shared.post("/v1/trainings", json=body), 422, "Validation Error")

    assert problem.errors[0]["loc"] == loc


def test_unknown_predict_field_is_422(shared):
    r = shared.post("/v1/models/m/predict", json={"points": [[0, 0]], "version": 1})

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["version"]


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_model_name_in_a_training_is_422(shared, name):
    r = shared.post("/v1/trainings", json={**XOR, "model": name})

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["model"]


def test_a_64_character_name_is_fine(make_client):
    client = make_client(run_jobs=False)

    r = client.post("/v1/trainings", json={**XOR, "model": "a" * 64})

    assert r.status_code == 202
    assert Job.model_validate(r.json).model == "a" * 64


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
@pytest.mark.parametrize(
    ("method", "suffix", "kwargs"),
    [
        ("get", "", {}),
        ("delete", "", {}),
        ("get", "/versions/1", {}),
        ("delete", "/versions/1", {}),
        ("get", "/versions/1/npz", {}),
        ("post", "/predict", {"json": {"x1": 0, "x2": 0}}),
        ("post", "/versions/1/predict", {"json": {"x1": 0, "x2": 0}}),
        ("post", "/versions", {"data": b"PK", "content_type": "application/octet-stream"}),
    ],
    ids=["get", "delete", "get version", "delete version", "npz", "predict", "predict version",
         "upload"],
)
def test_bad_model_name_in_a_path_is_422_or_404(shared, name, method, suffix, kwargs):
    r = getattr(shared, method)(f"/v1/models/{quote(name, safe='')}{suffix}", **kwargs)

    assert r.status_code in (404, 405, 422), r.get_data(as_text=True)
    assert_problem(r, r.status_code)
    assert shared.get("/v1/models").json["models"][0]["name"] == "m"


# ----- limits -----


@pytest.mark.parametrize("epochs", [0, -1])
def test_non_positive_epochs_are_422(shared, epochs):
    r = shared.post("/v1/trainings", json=_training(training={"epochs": epochs}))

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["training", "epochs"]


def _limit_problem(r, limit, maximum, loc):
    problem = assert_problem(r, 422, "Limit Exceeded")
    assert problem.limit == limit
    assert problem.maximum == maximum
    assert f"over the limit of {maximum} (setting NNSERVE_{limit.upper()})" in problem.detail
    assert problem.errors[0]["loc"] == loc
    return problem


def test_epochs_over_max_epochs_is_422_naming_it(shared):
    jobs = _job_count(shared)

    r = shared.post("/v1/trainings", json=_training(training={"epochs": 100_001}))

    problem = _limit_problem(r, "max_epochs", 100_000, ["training", "epochs"])
    assert problem.detail.startswith("max_epochs is 100001")
    assert _job_count(shared) == jobs


@pytest.mark.parametrize(
    "body",
    [{"points": [[0, 0]] * 4}, {"points": [{"x1": 0, "x2": 0}] * 4}],
    ids=["pairs", "objects"],
)
def test_points_over_max_predict_points_is_422_naming_it(make_client, body):
    client = make_client(max_predict_points=3)

    r = client.post("/v1/models/m/predict", json=body)

    _limit_problem(r, "max_predict_points", 3, ["points"])
    at_limit = client.post("/v1/models/m/predict", json={"points": body["points"][:3]})
    assert_problem(at_limit, 404, "Model Not Found")


def test_training_points_over_max_train_points_are_422_naming_it(make_client):
    client = make_client(max_train_points=3)

    listed = client.post("/v1/trainings", json=_training(dataset=POINTS))
    generated = client.post("/v1/trainings",
                            json=_training(dataset={"kind": "linear", "n": 4}))

    _limit_problem(listed, "max_train_points", 3, ["dataset", "points"])
    _limit_problem(generated, "max_train_points", 3, ["dataset"])


@pytest.mark.parametrize(
    ("network", "limit", "maximum"),
    [
        ({"hidden": [2] * 9}, "max_hidden_layers", 8),
        ({"hidden": [4, 257]}, "max_hidden_units", 256),
    ],
)
def test_networks_over_their_limits_are_422_naming_them(shared, network, limit, maximum):
    r = shared.post("/v1/trainings", json=_training(network=network))

    _limit_problem(r, limit, maximum, ["network", "hidden"])


def test_networks_at_their_limits_are_accepted(make_client):
    client = make_client(run_jobs=False)

    r = client.post("/v1/trainings", json=_training(network={"hidden": [256] + [2] * 7}))

    assert r.status_code == 202, r.json


def test_work_over_max_work_is_422_naming_it(shared):
    body = _training(dataset={"kind": "linear", "n": 100_000}, training={"epochs": 100_000})

    problem = _limit_problem(shared.post("/v1/trainings", json=body), "max_work", 3e10,
                             ["training", "epochs"])
    # 100,000 epochs and the 3 other starts' 300-epoch probes, of 100,000 points x 37 weights
    assert problem.detail.startswith("max_work is 373330000000,")


def test_the_defaults_on_the_largest_set_fit_within_the_work_limit(make_client):
    client = make_client(run_jobs=False)  # the 4 starts' probes count, and still fit

    r = client.post("/v1/trainings", json=_training(dataset={"kind": "linear", "n": 100_000}))

    assert r.status_code == 202, r.json


@pytest.mark.parametrize(("labels", "index"), [([0, 2, 1, 0], 1), ([0, 1, -1, 0], 2)])
def test_labels_other_than_0_and_1_are_422(shared, labels, index):
    r = shared.post("/v1/trainings", json=_training(dataset={**POINTS, "labels": labels}))

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["dataset", "points", "labels", index]


def test_labels_not_matching_points_are_422(shared):
    r = shared.post("/v1/trainings", json=_training(dataset={**POINTS, "labels": [0, 1, 1]}))

    assert_problem(r, 422, "Validation Error", "3 labels for 4 points")


def test_a_single_class_data_set_is_422(shared):
    jobs = _job_count(shared)

    r = shared.post("/v1/trainings", json=_training(dataset={**POINTS, "labels": [1, 1, 1, 1]}))

    problem = assert_problem(r, 422, "Invalid Input",
                             "the data set has a single class; it needs both 0 and 1")
    assert problem.errors[0]["loc"] == ["dataset"]
    assert _job_count(shared) == jobs


def test_a_set_too_small_to_split_is_422_naming_the_validation_split(shared):
    jobs = _job_count(shared)
    points = {**POINTS, "points": POINTS["points"] + [[0.5, 0.5]], "labels": [0, 1, 0, 0, 0]}

    r = shared.post("/v1/trainings", json=_training(dataset=points,
                                                    training={"validation_split": 0.2}))

    problem = assert_problem(r, 422, "Invalid Input",
                             "a validation split needs at least 2 points of each class; "
                             "class 1 has 1")
    assert problem.errors[0]["loc"] == ["training", "validation_split"]
    assert _job_count(shared) == jobs
    again = shared.post("/v1/trainings?wait=30", json={**_training(dataset=points),
                                                        "model": "unsplit"})
    assert again.status_code == 202 and again.json["status"] == "succeeded"  # no split: trains


@pytest.mark.parametrize(("training", "loc", "detail"), [
    ({"validation_split": 0.6}, ["training", "validation_split"], "less than or equal to 0.5"),
    ({"validation_split": -0.1}, ["training", "validation_split"], "greater than or equal to 0"),
    ({"l2": -1e-4}, ["training", "l2"], "greater than or equal to 0"),
    ({"monitor": "validation_loss"}, ["training", "monitor"], "needs a validation_split"),
    ({"monitor": "accuracy", "validation_split": 0.2}, ["training", "monitor"],
     "'loss' or 'validation_loss'"),
    ({"restore_best_weights": "maybe"}, ["training", "restore_best_weights"], "boolean"),
], ids=["split over", "split under", "l2", "monitor without split", "monitor", "restore"])
def test_validation_and_decay_knobs_out_of_range_are_422_naming_them(shared, training, loc,
                                                                   detail):
    problem = assert_problem(shared.post("/v1/trainings", json=_training(training=training)),
                             422, "Validation Error", detail)

    assert problem.errors[0]["loc"] == loc


def test_bce_with_an_identity_output_is_422(shared):
    body = _training(network={"output_activation": "identity"}, training={"loss": "bce"})

    r = shared.post("/v1/trainings", json=body)

    assert_problem(r, 422, "Validation Error",
                   "loss 'bce' needs output_activation 'sigmoid'; use loss 'mse'")


@pytest.mark.parametrize(
    ("field", "value"),
    [("optimizer", "adamw"), ("loss", "hinge"), ("dtype", "float16"), ("learning_rate", 0),
     ("starts", 17), ("batch_size", 0), ("target_accuracy", 1.5)],
)
def test_out_of_range_training_options_are_422(shared, field, value):
    r = shared.post("/v1/trainings", json=_training(training={field: value}))

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["training", field]


def test_wait_over_max_wait_is_422_naming_it(shared):
    jobs = _job_count(shared)

    r = shared.post("/v1/trainings?wait=61", json=XOR)

    _limit_problem(r, "max_wait_s", 60.0, ["wait"])
    assert _job_count(shared) == jobs


@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf"])
def test_a_malformed_wait_is_422(shared, wait):
    r = shared.post(f"/v1/trainings?wait={wait}", json=XOR)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["wait"]


# ----- every 422 names its fields -----

_422S = {
    "body field": ("post", "/v1/trainings", {"json": {**XOR, "model": "UPPER"}}),
    "query": ("get", "/v1/trainings?limit=0", {}),
    "limit": ("post", "/v1/trainings", {"json": _training(training={"epochs": 10**6})}),
    "single class": ("post", "/v1/trainings",
                     {"json": _training(dataset={**POINTS, "labels": [0] * 4})}),
    "version 0": ("get", "/v1/models/m/versions/0", {}),
    "name in path": ("get", "/v1/models/UPPER", {}),
    "name in upload path": ("post", "/v1/models/UPPER/versions",
                            {"data": b"PK", "content_type": "application/octet-stream"}),
    "model file": ("post", "/v1/models/m/versions",
                   {"data": b"not a zip", "content_type": "application/octet-stream"}),
}


@pytest.mark.parametrize(("method", "path", "kwargs"), _422S.values(), ids=_422S.keys())
def test_every_422_lists_errors_with_loc_paths(shared, method, path, kwargs):
    r = getattr(shared, method)(path, **kwargs)

    problem = assert_problem(r, 422)
    assert problem.errors, f"{problem.title} without errors"
    for error in problem.errors:
        assert isinstance(error["loc"], list)
        assert error["msg"]


# ----- no 500s -----


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "/npz"), ("delete", ""), ("post", "/predict")],
    ids=["get", "npz", "delete", "predict"],
)
def test_a_huge_version_number_is_not_found_not_a_crash(shared, method, suffix):
    kwargs = {"json": {"x1": 0, "x2": 0}} if method == "post" else {}

    r = getattr(shared, method)(f"/v1/models/m/versions/{'9' * 300}{suffix}", **kwargs)

    assert r.status_code in (404, 422), r.get_data(as_text=True)
    assert_problem(r, r.status_code)


# ----- headers -----


def test_request_id_is_echoed_when_sent(shared):
    r = shared.get("/v1/models", headers={"X-Request-ID": "abc-123_x.y:z"})

    assert r.headers["X-Request-ID"] == "abc-123_x.y:z"


@pytest.mark.parametrize("sent", [None, "x" * 300, "has space", "", "semi;colon"])
def test_request_id_is_generated_when_missing_or_invalid(shared, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}

    first = shared.get("/v1/models", headers=headers).headers["X-Request-ID"]
    second = shared.get("/v1/nope", headers=headers).headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


def test_request_id_is_echoed_on_problems_too(shared):
    r = shared.get("/v1/models/nope", headers={"X-Request-ID": "req-42"})

    assert_problem(r, 404, "Model Not Found")
    assert r.headers["X-Request-ID"] == "req-42"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/v1/models", {}),
        ("get", "/v1/models/m", {}),
        ("post", "/v1/models/m/predict", {"json": {"x1": 0, "x2": 0}}),
        ("get", "/v1/models/m/versions/1/npz", {}),
        ("get", "/v1/trainings", {}),
        ("post", "/v1/trainings", {"json": {**XOR, "model": "UPPER"}}),
        ("get", "/v1/nope", {}),
        ("get", "/healthz", {}),
        ("get", "/openapi.json", {}),
    ],
)
def test_answers_carry_nosniff_and_no_store(shared, method, path, kwargs):
    r = getattr(shared, method)(path, **kwargs)

    assert r.status_code < 500
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"


# ----- no leaks -----


def test_no_error_shows_a_store_path_or_a_traceback(shared):
    store = shared.application.extensions["nnserve"].settings.store_dir
    job_id = shared.get("/v1/trainings?model=m").json["jobs"][0]["id"]
    requests = [
        ("get", "/v1/models/nope", {}),
        ("get", "/v1/models/UPPER", {}),
        ("get", "/v1/models/m/versions/7", {}),
        ("delete", "/v1/models/m/versions/7", {}),
        ("get", "/v1/models/m/versions/0/npz", {}),
        ("post", "/v1/models/m/versions", {"data": b"PK\x03\x04junk",
                                           "content_type": "application/octet-stream"}),
        ("post", "/v1/models/m/versions", {"data": b"{}", "content_type": JSON}),
        ("post", "/v1/models/m/predict", {"data": b"[" * 100_000, "content_type": JSON}),
        ("post", "/v1/models/m/predict", {"json": {"points": [[0, "x"]]}}),
        ("post", "/v1/trainings", {"json": _training(dataset={**POINTS, "labels": [0] * 4})}),
        ("post", "/v1/trainings", {"json": _training(training={"epochs": 10**9})}),
        ("delete", f"/v1/trainings/{job_id}", {}),
        ("get", "/v1/trainings/nope", {}),
        ("put", "/v1/trainings", {}),
    ]
    for method, path, kwargs in requests:
        r = getattr(shared, method)(path, **kwargs)

        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert r.mimetype == PROBLEM
        text = r.get_data(as_text=True)
        assert str(store.parent) not in text, text
        assert "Traceback" not in text and 'File "' not in text, text
