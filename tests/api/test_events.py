"""GET /v1/trainings/{id}/events: the SSE framing, resuming, the limit, bad headers."""

import json

import pytest

from service import create_app, streams
from service.settings import Settings

from .helpers import FAST, XOR, assert_problem, train


def parse(text):
    """Return the SSE messages of text as dicts of their fields (comments as ":")."""
    messages = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ") if not line.startswith("retry:") else (
                "retry", "", line[6:].strip())
            fields[name or ":"] = value
        messages.append(fields)
    return messages


@pytest.fixture
def app(tmp_path):
    app = create_app(Settings(store_dir=tmp_path / "store", max_streams=2,
                              stream_keepalive_s=0.05))
    yield app
    app.extensions["nnserve"].stop()


def test_frame_writes_id_event_and_one_line_of_json():
    text = streams.frame("progress", {"epoch": 3, "loss": 0.5}, 3)
    assert text == 'id: 3\nevent: progress\ndata: {"epoch":3,"loss":0.5}\n\n'
    assert streams.frame("end", {"status": "failed"}) == 'event: end\ndata: {"status":"failed"}\n\n'
    assert streams.comment("keep-alive") == ": keep-alive\n\n"


@pytest.mark.parametrize("header", ["x", "-1", "1.5", "1" * 13, "٣"])
def test_a_last_event_id_that_names_no_epoch_is_a_422_naming_the_header(app, header):
    client = app.test_client()
    job = train(client, "m", training=FAST)
    r = client.get(f"/v1/trainings/{job.id}/events", headers={"Last-Event-ID": header})
    problem = assert_problem(r, 422)
    assert problem.model_dump()["errors"][0]["loc"] == ["header", "Last-Event-ID"]


def test_an_ended_job_sends_its_last_progress_and_end_at_once(app):
    client = app.test_client()
    job = train(client, "m", training=FAST)
    assert job.status == "succeeded"
    r = client.get(f"/v1/trainings/{job.id}/events")
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    messages = parse(r.get_data(as_text=True))
    assert messages[0] == {"retry": str(streams.RETRY_MS)}
    progress, end = messages[1], messages[2]
    assert progress["event"] == "progress" and progress["id"] == str(job.progress.epoch)
    assert json.loads(progress["data"])["epoch"] == job.progress.epoch
    assert end["event"] == "end" and "id" not in end
    data = json.loads(end["data"])
    assert data["status"] == "succeeded" and data["result"]["version"] == 1
    assert len(messages) == 3


def test_last_event_id_skips_the_events_already_seen(app):
    client = app.test_client()
    job = train(client, "m", training=FAST)
    r = client.get(f"/v1/trainings/{job.id}/events",
                   headers={"Last-Event-ID": str(job.progress.epoch)})
    events = [m.get("event") for m in parse(r.get_data(as_text=True))]
    assert events == [None, "end"]


def test_a_queued_job_sends_keep_alives_until_it_is_cancelled(app):
    service = app.extensions["nnserve"]
    service.runner.stop()  # nothing claims the job: it stays queued
    client = app.test_client()
    job_id = client.post("/v1/trainings", json=XOR).json["id"]
    stream = service.job_events(job_id)
    chunks = [next(stream), next(stream)]
    assert chunks[1] == ": keep-alive\n\n"
    service.jobs.cancel(job_id)
    rest = "".join(stream)
    assert parse(rest)[-1]["event"] == "end"
    assert json.loads(parse(rest)[-1]["data"])["status"] == "cancelled"
    stream.close()


def test_streams_beyond_the_limit_are_a_503_with_retry_after_until_one_closes(app):
    service = app.extensions["nnserve"]
    client = app.test_client()
    job = train(client, "m", training=FAST)
    held = [service.job_events(job.id) for _ in range(2)]
    r = client.get(f"/v1/trainings/{job.id}/events")
    assert_problem(r, 503, "Too Many Streams", "NNSERVE_MAX_STREAMS")
    assert int(r.headers["Retry-After"]) >= 1
    held.pop().close()  # closed before it was read: its place is free again
    r = client.get(f"/v1/trainings/{job.id}/events")
    assert r.status_code == 200
    r.close()  # the server closes a response once sent: that frees its place
    assert service.streams.count() == 1


def test_an_unknown_job_is_a_404(app):
    assert_problem(app.test_client().get("/v1/trainings/nope/events"), 404)


def test_close_all_ends_an_open_stream_and_refuses_new_ones(app):
    service = app.extensions["nnserve"]
    service.runner.stop()
    client = app.test_client()
    job_id = client.post("/v1/trainings", json=XOR).json["id"]
    stream = service.job_events(job_id)
    next(stream)
    service.streams.close_all()
    assert "".join(stream).count("event:") == 0  # ends without an end: the job has not
    assert_problem(client.get(f"/v1/trainings/{job_id}/events"), 503)


def test_openapi_documents_the_stream_and_its_header(app):
    doc = app.test_client().get("/openapi.json").json
    op = doc["paths"]["/v1/trainings/{job_id}/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {"404", "422", "503"} <= set(op["responses"])
    assert {"name": "Last-Event-ID", "in": "header"}.items() <= next(
        p for p in op["parameters"] if p["in"] == "header").items()
    for path in ("/v1/models/{name}/units.png", "/v1/models/{name}/versions/{version}/units.png"):
        assert "image/png" in doc["paths"][path]["get"]["responses"]["200"]["content"]


def test_a_sweep_has_no_training_events(app):
    client = app.test_client()
    body = {"model": "sw", "base": {"dataset": {"kind": "xor"}, "training": {"epochs": 20}},
            "grid": {"training.learning_rate": [0.1]}}
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 202, r.json
    assert_problem(client.get(f"/v1/trainings/{r.json['id']}/events"), 404, "Job Not Found")
    assert app.extensions["nnserve"].streams.count() == 0
