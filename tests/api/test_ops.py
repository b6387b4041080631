"""Operations: /healthz, /readyz, /metrics and /openapi.json."""

import re

import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from service.names import NAME_PATTERN
from service.schemas import Health

from .helpers import FAST, assert_problem, train

PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def _samples(client):
    """Return [(sample name, labels, value)] scraped from /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200
    families = text_string_to_metric_families(r.get_data(as_text=True))
    return [(s.name, s.labels, s.value) for family in families for s in family.samples]


def _value(samples, name, **labels):
    """Return the sum of the samples called name whose labels include labels."""
    return sum(value for sample, sample_labels, value in samples
               if sample == name and labels.items() <= sample_labels.items())


def test_healthz_is_ok(client):
    r = client.get("/healthz")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert Health.model_validate(r.json).status == "ok"


def test_readyz_is_ready_with_its_checks(client):
    r = client.get("/readyz")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    health = Health.model_validate(r.json)
    assert health.status == "ready"
    assert health.checks == {"store": "ok", "jobs": "ok"}


def test_readyz_is_503_when_the_store_cannot_be_written(make_client, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("a file where the store should be")
    client = make_client(store_dir=not_a_directory, jobs_db=tmp_path / "jobs.sqlite3")

    r = client.get("/readyz")

    problem = assert_problem(r, 503, "Service Unavailable", "not ready: store: ")
    assert set(problem.checks) == {"store"}
    assert str(tmp_path) not in r.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200


def test_metrics_is_prometheus_text_with_every_family(client, xor_model):
    r = client.get("/metrics")

    assert r.status_code == 200
    assert r.mimetype == "text/plain"
    names = {name for name, _, _ in _samples(client)}
    for name in ("nnserve_http_requests_total", "nnserve_http_request_duration_seconds_count",
                 "nnserve_points_predicted_total", "nnserve_training_jobs",
                 "nnserve_training_seconds_count"):
        assert name in names
    assert 'nnserve_training_jobs{status="succeeded"} 1.0' in r.get_data(as_text=True)


def test_metrics_count_requests_points_and_training(client):
    before = _samples(client)
    job = train(client, "counted", training=FAST)
    assert job.status == "succeeded"
    r = client.post("/v1/models/counted/predict", json={"points": [[0, 0], [0, 1], [1, 1]]})
    assert r.status_code == 200
    client.get("/v1/models/nope")

    after = _samples(client)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    predict_route = "/v1/models/<name>/predict"
    assert delta("nnserve_points_predicted_total") == 3
    assert delta("nnserve_http_requests_total", method="POST", route=predict_route,
                 status="200") == 1
    assert delta("nnserve_http_requests_total", method="GET", route="/v1/models/<name>",
                 status="404") == 1
    assert delta("nnserve_http_request_duration_seconds_count", method="POST",
                 route=predict_route) == 1
    assert delta("nnserve_training_seconds_count") == 1
    assert delta("nnserve_training_seconds_sum") > 0


def test_metrics_count_jobs_by_status(make_client):
    client = make_client(run_jobs=False)
    for model in ("a", "b", "c"):
        r = client.post("/v1/trainings", json={"model": model, "dataset": {"kind": "xor"}})
        assert r.status_code == 202
    client.delete(f"/v1/trainings/{r.json['id']}")

    samples = _samples(client)

    counts = {status: _value(samples, "nnserve_training_jobs", status=status)
              for status in ("queued", "running", "succeeded", "failed", "cancelled")}
    assert counts == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 1}


def test_openapi_is_a_valid_3_1_document(client):
    r = client.get("/openapi.json")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    doc = r.json
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_openapi_lists_every_route_and_method(app, client):
    paths = client.get("/openapi.json").json["paths"]

    routes = {(PARAM.sub(r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert documented == routes
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_openapi_documents_problems_and_path_parameters(client):
    paths = client.get("/openapi.json").json["paths"]

    predict = paths["/v1/models/{name}/versions/{version}/predict"]["post"]
    assert {p["name"] for p in predict["parameters"]} == {"name", "version"}
    for status in ("400", "404", "413", "415", "422"):
        assert "application/problem+json" in predict["responses"][status]["content"]
    assert "application/json" in predict["requestBody"]["content"]
    upload = paths["/v1/models/{name}/versions"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream",
                                                     "multipart/form-data"}
    assert "201" in upload["responses"]
    version = next(p for p in predict["parameters"] if p["name"] == "version")["schema"]
    assert version == {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}
    alias = paths["/v1/models/{name}/aliases/{alias}"]["put"]["parameters"]
    assert {p["name"]: p["schema"].get("pattern") for p in alias if p["in"] == "path"} == {
        "name": NAME_PATTERN, "alias": NAME_PATTERN}
    assert "408" in predict["responses"]  # a body too slow, refused by the worker


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_openapi_documents_401_wherever_a_token_can_be_required(make_client, token):
    """The contract, whatever this server's settings: writes need the token once
    NNSERVE_API_TOKEN is set, reads too with NNSERVE_PROTECT_READS; open routes never."""
    client = make_client(api_token=token)

    paths = client.get("/openapi.json").json["paths"]

    for path, method in (("/v1/trainings", "post"), ("/v1/models/{name}", "delete"),
                         ("/v1/models", "get"), ("/v1/models/{name}/predict", "post"),
                         ("/v2/models/{name}/infer", "post"), ("/dashboard/models", "get")):
        assert "401" in paths[path][method]["responses"], (path, method)
    for path in ("/healthz", "/readyz", "/metrics", "/", "/v2/health/live"):
        assert "401" not in paths[path]["get"]["responses"], path


def test_openapi_documents_the_201_of_a_training_that_ended_within_its_wait(client):
    responses = client.get("/openapi.json").json["paths"]["/v1/trainings"]["post"]["responses"]
    assert responses["201"]["content"] == responses["202"]["content"]


def test_metrics_count_unknown_methods_as_other(client):
    before = _samples(client)
    for method in ("FROB", "XYZZY", "BREW"):
        assert client.open("/healthz", method=method).status_code == 405
    after = _samples(client)
    labels = {lbls.get("method") for name, lbls, _ in after
              if name == "nnserve_http_requests_total"}
    assert not labels & {"FROB", "XYZZY", "BREW"}
    assert (_value(after, "nnserve_http_requests_total", method="other", route="unmatched",
                   status="405")
            - _value(before, "nnserve_http_requests_total", method="other", route="unmatched",
                     status="405")) == 3
