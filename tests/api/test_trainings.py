"""/v1/trainings: submit, wait, watch, list, paginate and cancel training jobs."""

import pytest

from service.schemas import Job, JobList, JobSummary, ModelDetail, TrainingRequest

from .helpers import FAST, assert_problem, train, wait_for

XOR = {"model": "xor-demo", "dataset": {"kind": "xor"}}
LONG = {"model": "long", "dataset": {"kind": "linear", "n": 2000},
        "training": {"epochs": 100_000}}  # about a minute of work: long enough to cancel


def test_one_job_is_whole_unless_view_summary_asks_for_the_lists_form(make_client):
    client = make_client(run_jobs=False)
    location = client.post("/v1/trainings", json=XOR).headers["Location"]
    whole = client.get(location).json
    assert Job.model_validate(whole) and "history" in whole
    assert client.get(f"{location}?view=full").json == whole  # the default, said aloud
    summary = client.get(f"{location}?view=summary").json
    assert "history" not in summary and summary == client.get("/v1/trainings").json["jobs"][0]
    problem = assert_problem(client.get(f"{location}?view=all"), 422)
    assert problem.errors[0]["loc"] == ["view"]
    assert_problem(client.get("/v1/trainings/nope?view=all"), 422)  # checked before a lookup


def test_create_answers_202_with_location_and_every_default_filled_in(make_client):
    client = make_client(run_jobs=False)  # nothing trains: the job stays as created

    r = client.post("/v1/trainings", json=XOR)

    assert r.status_code == 202
    assert r.mimetype == "application/json"
    job = JobSummary.model_validate(r.json)
    assert "history" not in r.json  # a summary unless view=full: readable in a terminal
    assert r.headers["Location"] == f"/v1/trainings/{job.id}"
    assert job.status == "queued"
    assert job.model == "xor-demo"
    assert r.json["request"] == {
        "model": "xor-demo",
        "dataset": {"kind": "xor"},
        "network": {"hidden": [4, 4], "activation": "sigmoid", "output_activation": "sigmoid",
                    "bias": True, "seed": 0},
        "training": {"epochs": 5000, "learning_rate": 0.02, "optimizer": "adam",
                     "momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08,
                     "batch_size": None, "loss": "bce", "target_accuracy": None,
                     "tolerance": None, "patience": None, "validation_split": 0.0,
                     "monitor": "loss", "restore_best_weights": True, "l2": 4e-05,
                     "dtype": "float64", "starts": 4, "probe_epochs": 300},
    }
    assert job.progress.model_dump() == {"epoch": 0, "epochs": 5000, "loss": None,
                                         "accuracy": None, "elapsed_s": 0.0}
    assert (job.result, job.error, job.started_at, job.finished_at) == (None, None, None, None)
    full = Job.model_validate(client.get(r.headers["Location"]).json)
    assert full.history.model_dump() == {"epoch": [], "loss": [], "accuracy": []}
    assert {k: v for k, v in full.model_dump(mode="json").items() if k != "history"} == r.json


def test_create_without_wait_answers_at_once_and_the_job_then_succeeds(client):
    r = client.post("/v1/trainings", json={**XOR, "training": FAST})

    assert r.status_code == 202
    assert JobSummary.model_validate(r.json).status in ("queued", "running")
    job = wait_for(client, r.json["id"], {"succeeded", "failed"})
    assert job.status == "succeeded"


def test_wait_answers_201_with_a_job_that_ended_within_it_and_202_with_one_that_did_not(
        make_client):
    """201: the job exists and has ended (whatever its status); 202: it is still queued or
    running when the wait is over (it answered 202 in both cases)."""
    client = make_client()
    done = client.post("/v1/trainings?wait=30", json={**XOR, "training": FAST})
    assert done.status_code == 201, done.json
    assert done.headers["Location"] == f"/v1/trainings/{done.json['id']}"
    assert JobSummary.model_validate(done.json).status == "succeeded"
    failed = client.post("/v1/trainings?wait=30", json={
        "model": "diverges", "dataset": {"kind": "xor"}, "network": {"output_activation":
        "identity"}, "training": {"loss": "mse", "learning_rate": 1000, "optimizer": "sgd",
                                  "epochs": 500}})
    assert failed.status_code == 201 and failed.json["status"] == "failed", failed.json
    running = client.post("/v1/trainings?wait=0.2", json=LONG)  # the wait runs out
    assert running.status_code == 202 and running.json["status"] in ("queued", "running")
    assert client.delete(f"/v1/trainings/{running.json['id']}").status_code == 200


def test_wait_answers_with_the_finished_xor_job(xor_model):
    job = Job.model_validate(xor_model)

    assert job.status == "succeeded"
    assert job.error is None
    assert job.progress.epoch == job.progress.epochs == 5000
    assert job.progress.accuracy == 1.0
    assert job.progress.loss is not None and job.progress.loss < 0.05
    assert job.result.name == "xor-demo"
    assert job.result.version == 1
    assert job.result.metrics.accuracy == 1.0
    assert job.result.metrics.epochs == 5000
    assert job.result.metrics.validation_accuracy is None  # nothing held out by default
    assert job.created_at <= job.started_at <= job.finished_at


def test_a_validation_split_is_held_out_and_measured_in_the_saved_metrics(client):
    training = {"epochs": 600, "validation_split": 0.25, "monitor": "validation_loss",
                "patience": 100, "l2": 1e-4}
    job = train(client, "held-out", {"kind": "linear", "n": 80, "seed": 4}, training=training)

    assert job.status == "succeeded", job.error
    metrics = job.result.metrics
    assert 0.8 <= metrics.validation_accuracy <= 1.0 and metrics.validation_loss > 0
    meta = client.get("/v1/models/held-out/versions/1").json
    assert meta["metrics"]["validation_accuracy"] == metrics.validation_accuracy
    assert meta["metrics"]["best_epoch"] is not None
    assert meta["training"]["validation_split"] == 0.25 and meta["training"]["l2"] == 1e-4
    history = meta["history"]
    assert len(history["validation_loss"]) == len(history["epoch"])
    at_best = history["validation_loss"][history["epoch"].index(metrics.best_epoch)]
    assert at_best == pytest.approx(metrics.validation_loss, rel=1e-12)  # its weights kept
    assert [p["start"] for p in history["probes"]] == [0, 1, 2, 3]


def test_get_shows_progress_history_result_and_times_after_success(client, xor_model):
    r = client.get(f"/v1/trainings/{xor_model['id']}")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    job = Job.model_validate(r.json)
    assert r.json == xor_model
    history = job.history
    assert len(history.epoch) == len(history.loss) == len(history.accuracy) > 10
    assert history.epoch == sorted(history.epoch)
    assert history.epoch[0] == 0 and history.epoch[-1] == 5000
    assert history.loss[-1] < history.loss[0]
    assert job.result.metrics.loss == pytest.approx(job.progress.loss)


@pytest.mark.parametrize(
    ("dataset", "n"),
    [
        ({"kind": "linear", "n": 50, "seed": 3}, 50),
        ({"kind": "xor"}, 21),
        ({"kind": "circle", "n": 60, "noise": 0.1, "seed": 1}, 60),
        ({"kind": "spiral", "n": 60, "noise": 0.0, "seed": 2}, 60),
        ({"kind": "points", "points": [[0, 0], [0, 1], [1, 0], [1, 1]], "labels": [0, 1, 1, 0]},
         4),
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) else None,
)
def test_every_dataset_kind_trains(client, dataset, n):
    job = train(client, "kinds", dataset, training=FAST)

    assert job.status == "succeeded", job.error
    assert job.request.dataset.kind == dataset["kind"]
    r = client.get("/v1/models/kinds")
    assert r.status_code == 200
    (version,) = ModelDetail.model_validate(r.json).versions
    assert version.dataset["kind"] == dataset["kind"]
    assert version.dataset["n"] == n
    assert sum(version.dataset["class_balance"].values()) == n


def test_a_diverging_job_fails_with_its_reason_and_saves_no_model(client):
    job = train(client, "diverges", network={"output_activation": "identity"},
                training={"epochs": 500, "learning_rate": 1000, "optimizer": "sgd",
                          "loss": "mse"})

    assert job.status == "failed"
    assert "diverged" in job.error
    assert job.result is None
    assert_problem(client.get("/v1/models/diverges"), 404, "Model Not Found")


def _submit(client, model):
    r = client.post("/v1/trainings", json={"model": model, "dataset": {"kind": "xor"}})
    assert r.status_code == 202
    return r.json["id"]


def _page(client, query=""):
    r = client.get(f"/v1/trainings{query}")
    assert r.status_code == 200, r.json
    assert r.mimetype == "application/json"
    return JobList.model_validate(r.json)


def test_list_is_newest_first_filtered_and_paginated(make_client):
    client = make_client(run_jobs=False)
    ids = [_submit(client, model) for model in ("a", "b", "a", "b", "a")]
    assert client.delete(f"/v1/trainings/{ids[2]}").json["status"] == "cancelled"
    newest_first = ids[::-1]

    everything = _page(client)
    assert [job.id for job in everything.jobs] == newest_first
    assert (everything.total, everything.limit, everything.offset) == (5, 50, 0)

    page = _page(client, "?limit=2&offset=1")
    assert [job.id for job in page.jobs] == newest_first[1:3]
    assert (page.total, page.limit, page.offset) == (5, 2, 1)
    assert _page(client, "?offset=5").jobs == []

    by_model = _page(client, "?model=a")
    assert [job.id for job in by_model.jobs] == [ids[4], ids[2], ids[0]]
    assert by_model.total == 3
    by_status = _page(client, "?status=queued")
    assert [job.id for job in by_status.jobs] == [ids[4], ids[3], ids[1], ids[0]]
    both = _page(client, "?model=a&status=cancelled")
    assert [job.id for job in both.jobs] == [ids[2]]
    assert _page(client, "?status=succeeded").total == 0
    assert _page(client, "?model=nobody").jobs == []


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("limit=0", ["limit"]),
        ("limit=501", ["limit"]),
        ("limit=many", ["limit"]),
        ("offset=-1", ["offset"]),
        ("status=done", ["status"]),
        ("model=UPPER", ["model"]),
        ("colour=red", ["colour"]),
    ],
)
def test_list_refuses_bad_query_parameters(client, query, loc):
    problem = assert_problem(client.get(f"/v1/trainings?{query}"), 422, "Validation Error")

    assert problem.errors[0]["loc"] == loc


def test_list_refuses_an_offset_beyond_any_page_instead_of_crashing(client):
    # 2**63 does not fit SQLite's INTEGER: the value must be refused before the query.
    r = client.get(f"/v1/trainings?offset={2**63}")

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["offset"]


def test_cancel_a_running_job_ends_it_cancelled_without_a_model(client):
    r = client.post("/v1/trainings", json=LONG)
    assert r.status_code == 202
    job_id = r.json["id"]
    wait_for(client, job_id, {"running"})

    r = client.delete(f"/v1/trainings/{job_id}")

    assert r.status_code == 200
    assert r.mimetype == "application/json"
    Job.model_validate(r.json)
    job = wait_for(client, job_id, {"cancelled", "succeeded", "failed"})
    assert job.status == "cancelled"
    assert job.result is None and job.error is None
    assert job.finished_at is not None
    assert job.progress.epoch < 100_000
    assert_problem(client.get("/v1/models/long"), 404, "Model Not Found")
    assert client.get("/v1/models").json == {"models": []}


def test_cancel_a_queued_job_ends_it_at_once_and_a_second_cancel_conflicts(make_client):
    client = make_client(run_jobs=False)
    job_id = _submit(client, "queued")

    r = client.delete(f"/v1/trainings/{job_id}")

    assert r.status_code == 200
    job = Job.model_validate(r.json)
    assert job.status == "cancelled"
    assert job.started_at is None and job.finished_at is not None
    assert_problem(client.delete(f"/v1/trainings/{job_id}"), 409, "Job Already Finished",
                   f"training job {job_id!r} already cancelled")


def test_cancel_a_finished_job_is_a_conflict(client, xor_model):
    r = client.delete(f"/v1/trainings/{xor_model['id']}")

    assert_problem(r, 409, "Job Already Finished",
                   f"training job {xor_model['id']!r} already succeeded")
    assert client.get(f"/v1/trainings/{xor_model['id']}").json["status"] == "succeeded"


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_job_is_404(client, method):
    r = getattr(client, method)("/v1/trainings/0123456789abcdef")

    problem = assert_problem(r, 404, "Job Not Found")
    assert problem.detail == "training job '0123456789abcdef' not found"


def test_the_request_in_a_job_revalidates_as_a_training_request(client):
    job = train(client, "again", {"kind": "linear", "n": 20, "seed": 5},
                network={"hidden": [3], "activation": "tanh"}, training=FAST)

    again = TrainingRequest.model_validate(job.request.model_dump(mode="json"))
    assert again.network.hidden == [3]
    assert again.network.activation == "tanh"
    assert again.dataset.n == 20


def test_waits_past_max_waits_are_answered_at_once(make_client):
    # each ?wait sleeps on a request thread: 24 waiting clients stalled /healthz for 8 s
    import threading
    import time

    client = make_client(run_jobs=False, max_waits=1)  # nothing trains: a wait lasts
    first = {}

    def hold():
        started = time.monotonic()
        first.update(r=client.post("/v1/trainings?wait=3", json=XOR),
                     took=time.monotonic() - started)

    holder = threading.Thread(target=hold)
    holder.start()
    waits = client.application.extensions["nnserve"]._waits
    deadline = time.monotonic() + 10
    while waits._value and time.monotonic() < deadline:  # until the holder took the place
        time.sleep(0.01)
    started = time.monotonic()
    r = client.post("/v1/trainings?wait=3", json=XOR)
    took = time.monotonic() - started
    holder.join()
    assert r.status_code == 202 and r.json["status"] == "queued" and took < 1.5, took
    assert first["r"].status_code == 202 and first["took"] >= 2.9  # it waited its 3 s
    started = time.monotonic()
    again = client.post("/v1/trainings?wait=1", json=XOR)  # the place was given back
    assert again.status_code == 202 and time.monotonic() - started >= 0.9


def test_a_draining_service_leaves_new_jobs_queued_for_another_process(make_client):
    # gunicorn's SIGTERM calls Service.drain (gunicorn_conf._drain_on_sigterm; the streams it
    # ends are tested in tests/e2e/test_events.py): a job claimed now would fail
    # "interrupted by shutdown" although other workers are there to run it
    import time

    client = make_client()
    service = client.application.extensions["nnserve"]
    assert client.post("/v1/trainings?wait=10", json=XOR).json["status"] == "succeeded"
    service.drain()
    job = client.post("/v1/trainings", json=XOR).json
    time.sleep(1.0)  # an undrained runner claims and ends it in well under 0.1 s
    assert client.get(f"/v1/trainings/{job['id']}").json["status"] == "queued"
