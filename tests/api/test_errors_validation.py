"""Refused values: non-finite numbers, unknown fields, bad names; every 422 names its fields."""

from urllib.parse import quote

import pytest

from service.schemas import JobSummary

from .helpers import (
    BAD_NAMES,
    JSON,
    POINTS,
    XOR,
    assert_problem,
    job_count,
    training_body,
)

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

    jobs = job_count(shared)

    r = shared.post("/v1/trainings", data=raw, content_type=JSON)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == loc
    assert job_count(shared) == jobs


INTEGER, NUMBER, FLAG = [True, "5", 5.5, [5], None], [True, "0.5", [0.5], None], [1, "true"]


@pytest.mark.parametrize(("section", "field", "value"), [
    *[(section, field, v) for section, field in [("training", "epochs"), ("network", "seed"),
                                                 ("dataset", "n")] for v in INTEGER],
    *[("training", field, v) for field in ("learning_rate", "l2") for v in NUMBER],
    *[(section, field, v) for section, field in [("training", "restore_best_weights"),
                                                 ("network", "bias")] for v in FLAG],
])
def test_a_value_of_another_json_type_is_422_not_coerced(shared, section, field, value):
    spec = {"kind": "linear", field: value} if section == "dataset" else {field: value}
    jobs = job_count(shared)

    r = shared.post("/v1/trainings", json=training_body(**{section: spec}))
    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"][-1] == field and job_count(shared) == jobs


@pytest.mark.parametrize("body, loc", [
    ({"x1": True, "x2": 0.5}, ["points", 0, 0]),
    ({"points": [[0.5, "0.5"]]}, ["points", 0, 1]),
    ({"points": [[0.5, 0.5]], "threshold": True}, ["threshold"]),
    ({"points": [[0.5, 0.5]], "threshold": "0.7"}, ["threshold"]),
])
def test_a_prediction_takes_json_numbers_only(shared, body, loc):
    problem = assert_problem(shared.post("/v1/models/m/predict", json=body), 422)
    assert problem.errors[0]["loc"] == loc


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**XOR, "colour": "red"}, ["colour"]),
        (training_body(training={"epochs": 10, "epoch": 10}), ["training", "epoch"]),
        (training_body(network={"layers": [2, 1]}), ["network", "layers"]),
        (training_body(dataset={"kind": "xor", "n": 10}), ["dataset", "xor", "n"]),
        (training_body(dataset={"kind": "lines"}), ["dataset"]),
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
    assert JobSummary.model_validate(r.json).model == "a" * 64


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


# ----- every 422 names its fields -----


_422S = {
    "body field": ("post", "/v1/trainings", {"json": {**XOR, "model": "UPPER"}}),
    "query": ("get", "/v1/trainings?limit=0", {}),
    "limit": ("post", "/v1/trainings", {"json": training_body(training={"epochs": 10**6})}),
    "single class": ("post", "/v1/trainings",
                     {"json": training_body(dataset={**POINTS, "labels": [0] * 4})}),
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


@pytest.mark.parametrize(("method", "path", "named"), [
    ("post", "/v1/models/m/predict?threshold=0.9", "threshold"),  # silently did nothing
    ("get", "/v1/models?limit=3", "limit"),
    ("get", "/v1/models/m/versions/1?x=1&y=2", "x"),
    ("get", "/v1/trainings?colour=red", "colour"),  # a query model refuses it as ever
])
def test_a_query_parameter_the_operation_does_not_take_is_422_naming_it(shared, method, path,
                                                                        named):
    kwargs = {"json": {"x1": 0.1, "x2": 0.9}} if method == "post" else {}
    problem = assert_problem(getattr(shared, method)(path, **kwargs), 422, "Validation Error")
    assert problem.errors[0]["loc"] == [named] and problem.detail.startswith(f"{named}: ")


@pytest.mark.parametrize("path", ["/healthz?probe=1", "/v2/health/ready?x=1",
                                  "/v1/models/m/predict?", "/v1/models/m/predict?&"])
def test_outside_v1_or_with_an_empty_query_nothing_is_refused(shared, path):
    r = (shared.post(path, json={"x1": 0.1, "x2": 0.9}) if "predict" in path
         else shared.get(path))
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/v1/trainings?status=succeeded&status=failed",
                                  "/dashboard/models?limit=10&limit=20",
                                  "/v1/models/m/points?limit=5&limit=5"])
def test_a_repeated_query_parameter_is_named_as_repeated(shared, path):
    # validating the list of its values said "Input should be a valid integer"
    name = path.split("?")[1].split("=")[0]
    problem = assert_problem(shared.get(path), 422)
    assert problem.detail == f"query parameter '{name}' is given 2 times: give it once"
    assert problem.errors[0]["loc"] == [name]


@pytest.mark.parametrize("body", [{"x1": 0.1}, {"x2": 0.1}])
def test_a_single_point_missing_a_coordinate_says_which_keys_it_has(shared, body):
    # was "points.0.1: Input should be a valid number", as if x2 had been sent as null
    problem = assert_problem(shared.post("/v1/models/m/predict", json=body), 422)
    assert problem.errors[0]["loc"] == ["points"]  # as the points form says it
    assert f"exactly the keys x1 and x2, got {sorted(body)}" in problem.errors[0]["msg"]


def test_a_repeated_unknown_query_parameter_is_named_unknown_not_repeated(shared):
    problem = assert_problem(shared.get("/v1/trainings?bogus=1&bogus=2"), 422)
    assert problem.errors[0]["loc"] == ["bogus"] and "give it once" not in problem.detail
