"""Bearer-token authentication: writes need the token; reads too with protect_reads."""

import pytest

from service.schemas import Job, VersionMeta

from .helpers import FAST, assert_problem, train

TOKEN = "s3cret"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
NPZ = "application/octet-stream"
XOR = {"model": "m", "dataset": {"kind": "xor"}, "training": FAST}
WRITES = {
    "train": ("post", "/v1/trainings", {"json": XOR}),
    "cancel": ("delete", "/v1/trainings/0123456789abcdef", {}),
    "upload": ("post", "/v1/models/m/versions", {"data": b"PK", "content_type": NPZ}),
    "delete model": ("delete", "/v1/models/m", {}),
    "delete version": ("delete", "/v1/models/m/versions/1", {}),
    "sweep": ("post", "/v1/sweeps", {"json": {"model": "m", "base": {"dataset": {"kind": "xor"}},
                                              "grid": {"network.seed": [0]}}}),
    "cancel sweep": ("delete", "/v1/sweeps/0123456789abcdef", {}),
    "set alias": ("put", "/v1/models/m/aliases/best", {"json": {"version": 1}}),
    "delete alias": ("delete", "/v1/models/m/aliases/best", {}),
}
READS = {
    "models": ("get", "/v1/models", {}, 200),
    "model": ("get", "/v1/models/nope", {}, 404),
    "version": ("get", "/v1/models/nope/versions/1", {}, 404),
    "npz": ("get", "/v1/models/nope/versions/1/npz", {}, 404),
    "trainings": ("get", "/v1/trainings", {}, 200),
    "training": ("get", "/v1/trainings/0123456789abcdef", {}, 404),
    "predict": ("post", "/v1/models/nope/predict", {"json": {"x1": 0, "x2": 0}}, 404),
    "predict version": ("post", "/v1/models/nope/versions/1/predict",
                        {"json": {"x1": 0, "x2": 0}}, 404),
    "sweeps": ("get", "/v1/sweeps", {}, 200),
    "sweep": ("get", "/v1/sweeps/0123456789abcdef", {}, 404),
    "predict alias": ("post", "/v1/models/nope/aliases/best/predict",
                      {"json": {"x1": 0, "x2": 0}}, 404),
}
OPS = ["/healthz", "/readyz", "/metrics", "/openapi.json"]
BAD_CREDENTIALS = {
    "none": {},
    "empty": {"Authorization": ""},
    "wrong token": {"Authorization": "Bearer wrong"},
    "prefix of the token": {"Authorization": "Bearer s3cre"},
    "token plus more": {"Authorization": "Bearer s3cretx"},
    "no scheme": {"Authorization": TOKEN},
    "basic scheme": {"Authorization": f"Basic {TOKEN}"},
    "scheme only": {"Authorization": "Bearer"},
}


def _assert_unauthorized(r):
    assert_problem(r, 401, "Unauthorized", "this endpoint needs 'Authorization: Bearer <token>'")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="nnserve"'


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize(("method", "path", "kwargs"), WRITES.values(), ids=WRITES.keys())
def test_writes_without_the_right_token_are_401(make_client, method, path, kwargs, headers):
    client = make_client(api_token=TOKEN)

    r = getattr(client, method)(path, headers=headers, **kwargs)

    _assert_unauthorized(r)
    assert client.get("/v1/trainings").json["total"] == 0


def test_a_refused_write_is_refused_before_its_body_is_read(make_client):
    client = make_client(api_token=TOKEN)

    r = client.post("/v1/trainings", data=b"{not json", content_type="application/json")

    _assert_unauthorized(r)


def test_writes_with_the_token_work(make_client):
    client = make_client(api_token=TOKEN)

    job = train(client, "m", training=FAST, headers=GOOD)
    assert job.status == "succeeded"
    npz = client.get("/v1/models/m/versions/1/npz")
    assert npz.status_code == 200
    r = client.post("/v1/models/m/versions", data=npz.data, content_type=NPZ,
                    headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 201, r.json
    assert VersionMeta.model_validate(r.json).version == 2
    assert_problem(client.delete(f"/v1/trainings/{job.id}", headers=GOOD), 409)
    assert client.delete("/v1/models/m/versions/2", headers=GOOD).status_code == 204
    assert client.delete("/v1/models/m", headers=GOOD).status_code == 204
    assert_problem(client.get("/v1/models/m"), 404, "Model Not Found")


@pytest.mark.parametrize("secret", ["voilà", "tok†", "tokÅ", "geheimü"])
def test_a_token_matches_as_utf_8_or_latin_1_whatever_its_last_byte(make_client, secret):
    # "à" is c3 a0 in UTF-8, "†" e2 80 a0, "Å" c3 85: str.strip() took the last byte away;
    # a browser's fetch sends "ü" as the one byte fc (curl sends UTF-8)
    client = make_client(api_token=secret, run_jobs=False)
    forms = [secret.encode()] + ([secret.encode("latin-1")] if max(map(ord, secret)) < 256
                                 else [])
    for sent in forms:
        header = {"Authorization": "Bearer " + sent.decode("latin-1")}  # as WSGI reads it
        r = client.post("/v1/trainings", json={**XOR, "model": "u"}, headers=header)
        assert r.status_code == 202, (secret, sent)


def test_a_token_beyond_latin_1_matches_when_sent_as_utf_8(make_client):
    client = make_client(api_token="tok€n-ünï")
    # a server hands the view the header's bytes read as Latin-1 (WSGI); curl sends UTF-8
    sent = "Bearer tok€n-ünï".encode().decode("latin-1")
    body = {**XOR, "model": "u"}
    assert client.post("/v1/trainings", json=body, headers={"Authorization": sent}
                       ).status_code == 202
    for wrong in ("Bearer tok€n-ünï".encode("cp1252").decode("latin-1"), "Bearer tok?n-??"):
        _assert_unauthorized(client.post("/v1/trainings", json=body,
                                         headers={"Authorization": wrong}))


def test_a_queued_job_can_be_cancelled_with_the_token(make_client):
    client = make_client(api_token=TOKEN, run_jobs=False)
    created = client.post("/v1/trainings", json=XOR, headers=GOOD)
    assert created.status_code == 202

    r = client.delete(f"/v1/trainings/{created.json['id']}", headers=GOOD)

    assert r.status_code == 200
    assert Job.model_validate(r.json).status == "cancelled"


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), READS.values(),
                         ids=READS.keys())
def test_reads_and_predictions_are_open_by_default(make_client, method, path, kwargs, status):
    client = make_client(api_token=TOKEN)

    r = getattr(client, method)(path, **kwargs)

    assert r.status_code == status, r.json


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), READS.values(),
                         ids=READS.keys())
def test_protect_reads_needs_the_token_for_reads(make_client, method, path, kwargs, status):
    client = make_client(api_token=TOKEN, protect_reads=True)

    _assert_unauthorized(getattr(client, method)(path, **kwargs))
    _assert_unauthorized(getattr(client, method)(path, headers={"Authorization": "Bearer no"},
                                                 **kwargs))
    assert getattr(client, method)(path, headers=GOOD, **kwargs).status_code == status


def test_protected_predictions_work_with_the_token(make_client):
    client = make_client(api_token=TOKEN, protect_reads=True)
    train(client, "m", training=FAST, headers=GOOD)

    r = client.post("/v1/models/m/predict", json={"x1": 0, "x2": 1}, headers=GOOD)

    assert r.status_code == 200
    assert r.json["version"] == 1


@pytest.mark.parametrize("protect_reads", [False, True])
@pytest.mark.parametrize("path", OPS)
def test_operations_are_always_open(make_client, path, protect_reads):
    client = make_client(api_token=TOKEN, protect_reads=protect_reads)

    r = client.get(path)

    assert r.status_code == 200
    assert "WWW-Authenticate" not in r.headers


def test_without_a_token_setting_writes_are_open(client):
    r = client.delete("/v1/models/nope")

    assert_problem(r, 404, "Model Not Found")
