"""Limits: each one refused as a Limit Exceeded problem naming the setting, before any work."""


import pytest

from .helpers import (
    FAST,
    POINTS,
    XOR,
    assert_problem,
    job_count,
    train,
    training_body,
)

# ----- limits -----


def test_predictions_and_figures_over_max_predict_work_are_422_naming_it(make_client):
    """points x parameters: the lab's 37-weight network may classify 27 points under a limit
    of 1000, not 28; its figures (a 200 x 200 grid, a 40 x 40 one) are over it. A 100,000
    point prediction of a [256]*8 network took 14.5 s, unauthenticated, with no limit."""
    client = make_client(max_predict_work=1000)
    job = train(client, "lab", training=FAST)
    ok = client.post("/v1/models/lab/predict", json={"points": [[0.5, 0.5]] * 27})
    assert ok.status_code == 200, ok.json
    r = client.post("/v1/models/lab/predict", json={"points": [[0.5, 0.5]] * 28})
    problem = _limit_problem(r, "max_predict_work", 1000.0, ["points"])
    assert problem.detail.startswith("max_predict_work is 1036,")
    for figure in ("plot.png", "units.png", "versions/1/plot.png"):
        _limit_problem(client.get(f"/v1/models/lab/{figure}"), "max_predict_work", 1000.0,
                       ["max_predict_work"])
    _limit_problem(client.get(f"/v1/trainings/{job.id}/boundary.png"), "max_predict_work",
                   1000.0, ["max_predict_work"])
    v2 = {"inputs": [{"name": "points", "shape": [28, 2], "datatype": "FP64",
                      "data": [0.5] * 56}]}
    r = client.post("/v2/models/lab/infer", json=v2)
    assert r.status_code == 400 and "NNSERVE_MAX_PREDICT_WORK" in r.json["error"]


@pytest.mark.parametrize("epochs", [0, -1])
def test_non_positive_epochs_are_422(shared, epochs):
    r = shared.post("/v1/trainings", json=training_body(training={"epochs": epochs}))

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
    jobs = job_count(shared)

    r = shared.post("/v1/trainings", json=training_body(training={"epochs": 100_001}))

    problem = _limit_problem(r, "max_epochs", 100_000, ["training", "epochs"])
    assert problem.detail.startswith("max_epochs is 100001")
    assert job_count(shared) == jobs


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

    listed = client.post("/v1/trainings", json=training_body(dataset=POINTS))
    generated = client.post("/v1/trainings",
                            json=training_body(dataset={"kind": "linear", "n": 4}))

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
    r = shared.post("/v1/trainings", json=training_body(network=network))

    _limit_problem(r, limit, maximum, ["network", "hidden"])


def test_networks_at_their_limits_are_accepted(make_client):
    client = make_client(run_jobs=False)

    r = client.post("/v1/trainings", json=training_body(network={"hidden": [256] + [2] * 7}))

    assert r.status_code == 202, r.json


def test_work_over_max_work_is_422_naming_it(shared):
    body = training_body(dataset={"kind": "linear", "n": 100_000}, training={"epochs": 100_000})

    problem = _limit_problem(shared.post("/v1/trainings", json=body), "max_work", 3e10,
                             ["training", "epochs"])
    # 100,000 epochs and the 3 other starts' 300-epoch probes, of 100,000 points x 37 weights
    assert problem.detail.startswith("max_work is 373330000000,")


def test_the_defaults_on_the_largest_set_fit_within_the_work_limit(make_client):
    client = make_client(run_jobs=False)  # the 4 starts' probes count, and still fit

    r = client.post("/v1/trainings", json=training_body(dataset={"kind": "linear", "n": 100_000}))

    assert r.status_code == 202, r.json


@pytest.mark.parametrize(("labels", "index"), [([0, 2, 1, 0], 1), ([0, 1, -1, 0], 2)])
def test_labels_other_than_0_and_1_are_422(shared, labels, index):
    r = shared.post("/v1/trainings", json=training_body(dataset={**POINTS, "labels": labels}))

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["dataset", "points", "labels", index]


def test_labels_not_matching_points_are_422(shared):
    r = shared.post("/v1/trainings", json=training_body(dataset={**POINTS, "labels": [0, 1, 1]}))

    assert_problem(r, 422, "Validation Error", "3 labels for 4 points")


def test_a_single_class_data_set_is_422(shared):
    jobs = job_count(shared)

    r = shared.post("/v1/trainings", json=training_body(dataset={**POINTS, "labels": [1, 1, 1, 1]}))

    problem = assert_problem(r, 422, "Invalid Input",
                             "the data set has a single class; it needs both 0 and 1")
    assert problem.errors[0]["loc"] == ["dataset"]
    assert job_count(shared) == jobs


def test_a_set_too_small_to_split_is_422_naming_the_validation_split(shared):
    jobs = job_count(shared)
    points = {**POINTS, "points": POINTS["points"] + [[0.5, 0.5]], "labels": [0, 1, 0, 0, 0]}

    r = shared.post("/v1/trainings", json=training_body(dataset=points,
                                                        training={"validation_split": 0.2}))

    problem = assert_problem(r, 422, "Invalid Input",
                             "a validation split needs at least 2 points of each class; "
                             "class 1 has 1")
    assert problem.errors[0]["loc"] == ["training", "validation_split"]
    assert job_count(shared) == jobs
    again = shared.post("/v1/trainings?wait=30", json={**training_body(dataset=points),
                                                        "model": "unsplit"})
    assert again.status_code == 201 and again.json["status"] == "succeeded"  # no split: trains


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
    problem = assert_problem(shared.post("/v1/trainings", json=training_body(training=training)),
                             422, "Validation Error", detail)

    assert problem.errors[0]["loc"] == loc


def test_bce_with_an_identity_output_is_422(shared):
    body = training_body(network={"output_activation": "identity"}, training={"loss": "bce"})

    r = shared.post("/v1/trainings", json=body)

    problem = assert_problem(r, 422, "Validation Error",
                             "loss 'bce' needs output_activation 'sigmoid'; use loss 'mse'")
    assert problem.errors[0]["loc"] == ["training"]  # was [], naming no field


@pytest.mark.parametrize(
    ("field", "value"),
    [("optimizer", "adamw"), ("loss", "hinge"), ("dtype", "float16"), ("learning_rate", 0),
     ("starts", 17), ("batch_size", 0), ("target_accuracy", 1.5)],
)
def test_out_of_range_training_options_are_422(shared, field, value):
    r = shared.post("/v1/trainings", json=training_body(training={field: value}))

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["training", field]


def test_wait_over_max_wait_is_422_naming_it(shared):
    jobs = job_count(shared)

    r = shared.post("/v1/trainings?wait=61", json=XOR)

    _limit_problem(r, "max_wait_s", 60.0, ["wait"])
    assert job_count(shared) == jobs


@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf"])
def test_a_malformed_wait_is_422(shared, wait):
    r = shared.post(f"/v1/trainings?wait={wait}", json=XOR)

    problem = assert_problem(r, 422, "Validation Error")
    assert problem.errors[0]["loc"] == ["wait"]
