"""/v1/sweeps: a grid of trainings run as one job, each trial a version, the best aliased."""

import time

import pytest

from service.schemas import Sweep, SweepList, TrainingRequest

from .helpers import assert_problem, train

BASE = {"dataset": {"kind": "xor"}, "network": {"hidden": [4]},
        "training": {"epochs": 40, "starts": 1}}
GRID = {"training.learning_rate": [0.02, 0.2], "network.seed": [0, 1],
        "network.hidden": [[3], [4]]}


def _start(client, grid=GRID, base=BASE, **extra):
    body = {"model": "sw", "base": base, "grid": grid, **extra}
    return client.post("/v1/sweeps", json=body)


def _wait(client, sweep_id, statuses=("succeeded", "failed", "cancelled"), timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        sweep = Sweep.model_validate(client.get(f"/v1/sweeps/{sweep_id}").json)
        if sweep.status in statuses:
            return sweep
        assert time.monotonic() < deadline, f"sweep still {sweep.status}"
        time.sleep(0.05)


def test_a_sweep_trains_every_combination_as_a_version_and_aliases_the_best(client):
    r = _start(client)
    assert r.status_code == 202, r.json
    assert r.headers["Location"] == f"/v1/sweeps/{r.json['id']}"
    sweep = _wait(client, r.json["id"])
    assert sweep.status == "succeeded", sweep.error
    assert sweep.progress.done == sweep.progress.total == 8
    combos = {(t.parameters["training.learning_rate"], t.parameters["network.seed"],
               tuple(t.parameters["network.hidden"])) for t in sweep.trials}
    assert combos == {(lr, s, h) for lr in (0.02, 0.2) for s in (0, 1) for h in ((3,), (4,))}
    assert [t.trial for t in sweep.trials] == list(range(8))
    assert {t.status for t in sweep.trials} == {"succeeded"}
    assert sorted(t.version for t in sweep.trials) == list(range(1, 9))
    for t in sweep.trials:  # each version holds its trial's parameters and training
        meta = client.get(f"/v1/models/sw/versions/{t.version}").json
        assert meta["sweep"] == {"id": sweep.id, "trial": t.trial, "parameters": t.parameters}
        assert meta["training"]["learning_rate"] == t.parameters["training.learning_rate"]
        assert meta["architecture"]["layers"] == [2, *t.parameters["network.hidden"], 1]
        assert meta["metrics"] == t.metrics.model_dump(exclude_unset=True) | meta["metrics"]
    ranked = sorted(sweep.trials, key=lambda t: (-t.metrics.accuracy, t.metrics.loss))
    assert sweep.best.trial == ranked[0].trial
    assert client.get("/v1/models/sw").json["aliases"] == {"best": sweep.best.version}
    listed = SweepList.model_validate(client.get("/v1/sweeps").json)
    assert [s.id for s in listed.sweeps] == [sweep.id] and listed.total == 1
    assert client.get("/v1/trainings").json["total"] == 0  # a sweep is not a training


def test_a_trial_trained_in_a_sweep_equals_it_trained_alone(client):
    sweep = _wait(client, _start(client, grid={"training.learning_rate": [0.05, 0.5]}).json["id"])
    trial = sweep.trials[1]
    alone = {"model": "alone", **BASE, "training": {**BASE["training"], "learning_rate": 0.5}}
    job = client.post("/v1/trainings?wait=30", json=alone).json
    assert job["result"]["metrics"]["loss"] == trial.metrics.loss


def test_best_by_validation_accuracy_ties_broken_by_validation_loss(client):
    base = {"dataset": {"kind": "linear", "n": 40}, "network": {"hidden": [2]},
            "training": {"epochs": 30, "starts": 1, "validation_split": 0.25}}
    r = _start(client, base=base, grid={"network.seed": [0, 1, 2]},
               metric="validation_accuracy")
    sweep = _wait(client, r.json["id"])
    key = [(-t.metrics.validation_accuracy, t.metrics.validation_loss, t.trial)
           for t in sweep.trials]
    assert sweep.best.trial == min(key)[2]


@pytest.mark.parametrize(("grid", "base", "loc", "detail"), [
    ({"training.learnin_rate": [0.1]}, BASE, ["grid", "training.learnin_rate"], "not a field"),
    ({"training.learning_rate": []}, BASE, ["grid", "training.learning_rate"], None),
    ({"training.learning_rate": [0.1, -1]}, BASE, ["grid", "training.learning_rate"],
     "value -1"),
    ({"network.activation": ["tanh", "nope"]}, BASE, ["grid", "network.activation"], "'nope'"),
    ({"training.epochs": [10, 10**9]}, BASE, ["grid", "training.epochs"], "max_epochs"),
    ({"training.validation_split": [0.5]}, {**BASE, "dataset": {"kind": "points",
      "points": [[0, 0], [1, 1], [0, 1]], "labels": [0, 1, 1]}},
     ["grid", "training.validation_split"], "value 0.5"),
    ({"model": ["x"]}, BASE, ["grid", "model"], "not a field"),
    ({"dataset.kind": [None]}, BASE, ["grid", "dataset.kind"], "value None"),  # was base's
    ({"dataset.n": [10, 20]}, {**BASE, "dataset": {"n": 50}}, ["base", "dataset"], "base"),
    ({"network.seed": [True]}, BASE, ["grid", "network.seed"], "value True"),  # not 1
    ({"network.seed": [0]}, {**BASE, "network": {"hidden": [0]}}, ["base", "network", "hidden",
                                                                    0], "base"),
    ({}, BASE, ["grid"], None),
    ({"network": [{"activation": "tanh"}], "network.hidden": [[8]]}, BASE, ["grid", "network"],
     "overlaps grid key 'network.hidden'"),
])
def test_a_refused_grid_is_422_naming_the_key_and_queues_nothing(client, grid, base, loc,
                                                                  detail):
    problem = assert_problem(_start(client, grid=grid, base=base), 422, detail=detail)
    assert problem.errors[0]["loc"] == loc
    assert client.get("/v1/sweeps").json["total"] == 0


def test_a_refused_value_is_shown_cut_short(client):
    problem = assert_problem(_start(client, grid={"network.hidden": [[4] * 10_000 + [0]]}), 422)
    assert problem.errors[0]["loc"] == ["grid", "network.hidden"]
    assert len(problem.detail) < 300


def test_a_sweep_can_be_cancelled_between_its_groups_of_saves(client):
    base = {"dataset": {"kind": "linear"}, "network": {"hidden": [4]},
            "training": {"epochs": 20000, "starts": 1, "target_accuracy": None}}
    sweep_id = _start(client, base=base, grid={"dataset.n": [10, 2000]}).json["id"]
    deadline = time.monotonic() + 30  # the first group (10 points) saves its trial first
    while Sweep.model_validate(client.get(f"/v1/sweeps/{sweep_id}").json).trials[0].status \
            != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = client.delete(f"/v1/sweeps/{sweep_id}")
    assert r.status_code == 200, r.json
    sweep = _wait(client, sweep_id)
    assert sweep.status == "cancelled"
    assert [(t.status, t.version) for t in sweep.trials] == [("succeeded", 1),
                                                              ("cancelled", None)]
    assert [v["version"] for v in client.get("/v1/models/sw").json["versions"]] == [1]


def test_best_is_the_best_trial_whose_version_is_still_its_own(client):
    from service.sweeps.grid import ranked_trials
    from service.sweeps.run import BEST, _alias_best

    sweep = _wait(client, _start(client).json["id"])
    store, states = client.application.extensions["nnserve"].store, sweep.model_dump()["trials"]
    ranked = ranked_trials(states, sweep.metric)
    client.delete("/v1/models/sw/aliases/best")
    client.delete(f"/v1/models/sw/versions/{states[ranked[0]]['version']}")
    _alias_best(store, "sw", sweep.id, states, ranked)  # the best's version was deleted
    assert client.get("/v1/models/sw").json["aliases"] == {BEST: states[ranked[1]]["version"]}
    assert client.delete("/v1/models/sw").status_code == 204
    _alias_best(store, "sw", sweep.id, states, ranked)  # every version gone: no alias, no error
    assert client.get("/v1/models/sw").status_code == 404
    train(client, "sw", training={"epochs": 5})  # the name again, numbered from 1 again
    _alias_best(store, "sw", sweep.id, states, ranked)  # version 1 is no trial's now
    assert client.get("/v1/models/sw").json["aliases"] == {}


def test_a_validation_metric_needs_a_split_in_every_trial(client):
    problem = assert_problem(_start(client, metric="validation_accuracy"), 422)
    assert problem.errors[0]["loc"] == ["metric"]


def test_more_trials_than_the_setting_is_422(make_client):
    client = make_client(max_sweep_trials=7)
    problem = assert_problem(_start(client), 422, "Limit Exceeded", "NNSERVE_MAX_SWEEP_TRIALS")
    assert problem.errors[0]["loc"] == ["grid"]


def test_the_work_limit_applies_to_the_sum_of_the_trials(make_client):
    # one trial's work: 40 epochs x 21 points x 17 parameters ([4] hidden: 2*4+4+4+1)
    client = make_client(max_work=40 * 21 * 17 * 3)
    grid = {"network.seed": [0, 1, 2]}
    assert _start(client, grid=grid).status_code == 202
    problem = assert_problem(_start(client, grid={"network.seed": [0, 1, 2, 3]}), 422,
                             "Limit Exceeded", "max_work")
    assert problem.errors[0]["loc"] == ["grid"]


def test_cancel_leaves_no_version_from_a_cancelled_trial(make_client):
    client = make_client(run_jobs=False)
    sweep_id = _start(client).json["id"]
    r = client.delete(f"/v1/sweeps/{sweep_id}")
    assert r.status_code == 200, r.json
    sweep = Sweep.model_validate(r.json)
    assert sweep.status == "cancelled"
    assert {t.status for t in sweep.trials} == {"cancelled"}
    assert client.get("/v1/models/sw").status_code == 404
    assert_problem(client.delete(f"/v1/sweeps/{sweep_id}"), 409)


def test_cancel_of_a_running_sweep_stops_it_and_saves_nothing_more(client):
    base = {**BASE, "training": {"epochs": 20000, "starts": 1}}
    sweep_id = _start(client, base=base, grid={"network.seed": [0, 1]}).json["id"]
    _wait(client, sweep_id, ("running",))
    r = client.delete(f"/v1/sweeps/{sweep_id}")
    assert r.status_code == 200
    sweep = _wait(client, sweep_id)
    assert sweep.status == "cancelled"
    assert {t.status for t in sweep.trials} == {"cancelled"}
    assert all(t.version is None for t in sweep.trials)
    assert client.get("/v1/models/sw").status_code == 404


def test_a_sweep_is_not_a_training_job_nor_the_reverse(client):
    sweep_id = _start(client).json["id"]
    assert_problem(client.get(f"/v1/trainings/{sweep_id}"), 404)
    assert_problem(client.get("/v1/sweeps/0123456789abcdef"), 404, "Sweep Not Found")
    _wait(client, sweep_id)


def test_the_comparison_figure_has_the_asked_size_and_is_kept(client):
    from ..unit.test_plots import assert_figure

    sweep = _wait(client, _start(client).json["id"])
    r = client.get(f"/v1/sweeps/{sweep.id}/plot.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert_figure(r.data, 1200, 400)
    r = client.get(f"/v1/sweeps/{sweep.id}/plot.png?width=900&height=600")
    assert_figure(r.data, 900, 600)
    assert client.get(f"/v1/sweeps/{sweep.id}/plot.png?width=900&height=600").data == r.data
    assert_problem(client.get(f"/v1/sweeps/{sweep.id}/plot.png?width=10"), 422)
    assert_problem(client.get("/v1/sweeps/nope/plot.png"), 404, "Sweep Not Found")


def test_the_comparison_figure_draws_only_versions_that_are_still_the_trials(make_client):
    client = make_client()
    sweep = _wait(client, _start(client).json["id"])
    assert client.delete("/v1/models/sw").status_code == 204
    # each figure from a worker of its own (a fresh figure cache), as gunicorn's would be
    gone = make_client(run_jobs=False).get(f"/v1/sweeps/{sweep.id}/plot.png")
    train(client, "sw", training={"epochs": 5})  # the name again: version 1, no trial's
    foreign = make_client(run_jobs=False).get(f"/v1/sweeps/{sweep.id}/plot.png")
    assert gone.status_code == foreign.status_code == 200
    assert foreign.data == gone.data  # the new version 1 is not drawn as trial 0's


def test_the_most_important_parameter_is_the_one_that_splits_the_metric():
    from service.sweep_plots import most_important

    trials = [{"parameters": {"a": a, "b": b}, "metrics": {"accuracy": 0.5 + 0.4 * a + 0.01 * b}}
              for a in (0, 1) for b in (0, 1, 2)]
    assert most_important(trials, "accuracy", ["a", "b"]) == "a"
    assert most_important(trials, "accuracy", ["b", "a"]) == "a"


def test_the_openapi_document_describes_sweeps_and_aliases(client):
    paths = client.get("/openapi.json").json["paths"]
    assert set(paths["/v1/sweeps"]) == {"get", "post"}
    assert set(paths["/v1/sweeps/{sweep_id}"]) == {"get", "delete"}
    assert "get" in paths["/v1/sweeps/{sweep_id}/plot.png"]
    assert set(paths["/v1/models/{name}/aliases/{alias}"]) == {"put", "delete"}
    assert "post" in paths["/v1/models/{name}/aliases/{alias}/predict"]
    body = paths["/v1/sweeps"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SweepRequest")


def test_a_data_set_no_grid_key_changes_is_validated_once_and_shared():
    from service.schemas import SweepRequest
    from service.sweeps.grid import trial_requests

    points = [[i / 1000, (i * 7 % 1000) / 1000] for i in range(1000)]
    base = {"dataset": {"kind": "points", "points": points,
                        "labels": [int(x > y) for x, y in points]}, "training": {"epochs": 5}}
    validated = []

    def validate(body, parameters):
        validated.append(isinstance(body["dataset"], dict))  # a dict is parsed, not reused
        return TrainingRequest.model_validate(body)

    req = SweepRequest.model_validate({"model": "sw", "base": base,
                                       "grid": {"network.seed": [0, 1, 2]}})
    trials = trial_requests(req, validate)
    assert validated == [True, False, False]
    assert trials[1].dataset is trials[0].dataset is trials[2].dataset
    assert [t.network.seed for t in trials] == [0, 1, 2]
    swept = SweepRequest.model_validate({"model": "sw", "base": {"dataset": {"kind": "linear"}},
                                         "grid": {"dataset.seed": [0, 1]}})
    trials = trial_requests(swept, lambda body, _: TrainingRequest.model_validate(body))
    assert [t.dataset.seed for t in trials] == [0, 1]


def test_a_sweep_run_again_goes_on_from_the_trials_it_saved(client):
    from service.sweeps.run import run_sweep

    sweep = _wait(client, _start(client).json["id"])
    service = client.application.extensions["nnserve"]
    job = service.jobs.get(sweep.id)
    lost = sweep.trials[5]  # of the last group, whose saves no progress reported: as if
    # the first attempt's worker died before saving it
    before = client.get(f"/v1/models/sw/versions/{lost.version}").json
    assert client.delete(f"/v1/models/sw/versions/{lost.version}").status_code == 204
    result = run_sweep(service, {**job, "attempt": 2, "lease": None},
                       lambda *args, **kwargs: False)
    versions = {i: trial["version"] for i, trial in enumerate(result["trials"])}
    assert {i: v for i, v in versions.items() if i != 5} == {
        t.trial: t.version for t in sweep.trials if t.trial != 5}  # none saved twice
    again = client.get(f"/v1/models/sw/versions/{versions[5]}").json
    assert versions[5] > max(t.version for t in sweep.trials)
    assert again["sha256"] == before["sha256"] and again["sweep"] == before["sweep"]
    assert len(client.get("/v1/models/sw").json["versions"]) == len(sweep.trials)


def test_a_sweep_run_again_does_not_bring_back_a_version_deleted_since(client):
    from service.sweeps.run import run_sweep

    sweep = _wait(client, _start(client).json["id"])
    service = client.application.extensions["nnserve"]
    job = service.jobs.get(sweep.id)
    deleted = sweep.trials[2].version  # of the first group: its progress reported it saved
    assert client.delete(f"/v1/models/sw/versions/{deleted}").status_code == 204
    result = run_sweep(service, {**job, "attempt": 2, "lease": None},
                       lambda *args, **kwargs: False)
    assert [t["version"] for t in result["trials"]] == [t.version for t in sweep.trials]
    listed = [v["version"] for v in client.get("/v1/models/sw").json["versions"]]
    assert deleted not in listed and len(listed) == len(sweep.trials) - 1


def test_checking_a_grid_of_data_sets_keeps_none_of_them(make_client):
    # each trial's data set was built and kept until the check ended: 256 seeds of 100,000
    # points held 600 MB of a worker for a 1.5 KB request
    import tracemalloc

    from service.schemas import SweepRequest
    from service.sweeps import check_sweep

    client = make_client(run_jobs=False)
    settings = client.application.extensions["nnserve"].settings
    req = SweepRequest.model_validate({
        "model": "many", "base": {"dataset": {"kind": "circle", "n": 100_000},
                                  "training": {"epochs": 1, "starts": 1}},
        "grid": {"dataset.seed": list(range(32))}})  # 2.4 MB a data set, 77 MB kept before
    tracemalloc.start()
    try:
        assert len(check_sweep(req, settings)) == 32
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak


def test_a_group_of_large_networks_trains_in_passes_that_bound_its_memory(make_client):
    # every trial of one network trained in one stack: 256 trials of eight layers of 256
    # units, 4 starts each, would have held 48 GB; N=32 took a worker from 1.8 to 7.8 GB
    import tracemalloc

    from service.schemas import SweepRequest
    from service.sweeps.run import _passes

    service = make_client(run_jobs=False).application.extensions["nnserve"]
    big = {"dataset": {"kind": "xor"}, "network": {"hidden": [256] * 8},
           "training": {"epochs": 2, "starts": 2, "probe_epochs": 1}}
    req = SweepRequest.model_validate({"model": "big", "base": big,
                                       "grid": {"network.seed": [0, 1, 2, 3, 4, 5]}})
    trials = [TrainingRequest.model_validate({"model": "big", **big,
                                              "network": {**big["network"], "seed": s}})
              for s in range(6)]
    assert [len(p) for p in _passes(list(range(6)), trials)] == [2, 2, 2]  # 459,777 x 2 each
    tracemalloc.start()
    try:
        states = service.sweep_here(req, lambda *a, **k: False)["trials"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s["status"] for s in states] == ["succeeded"] * 6
    assert peak < 400e6, peak  # 235 MB in passes of 2 trials; 682 MB as one stack of 6
    alone = service.train(trials[5]).metrics()  # a trial of the last pass, trained alone
    assert states[5]["metrics"]["loss"] == alone["loss"]
    assert states[5]["metrics"]["accuracy"] == alone["accuracy"]


def test_a_grid_value_past_its_bound_is_422_naming_the_key(client):
    # a data set of points swept as a value was copied into every trial's parameters: its
    # state, the sweep's answers and each version's meta (112 MB answers at 20,000 points)
    points = [[i / 500, (i % 7) / 7] for i in range(500)]
    dataset = {"kind": "points", "points": points, "labels": [i % 2 for i in range(500)]}
    r = _start(client, grid={"dataset": [dataset], "network.seed": [0, 1]})
    problem = assert_problem(r, 422)
    assert problem.errors[0]["loc"] == ["grid", "dataset"]
    assert "over the limit of 4096: put a data set of points in base" in problem.detail
    r = _start(client, grid={"network.seed": [0, 1]},
               base={**BASE, "dataset": dataset})  # the way that works: in base, once
    assert r.status_code == 202, r.json


def test_a_sweep_cancelled_as_its_worker_was_lost_shows_the_trials_it_saved(make_client):
    # the reap ended it cancelled (a cancel was asked), and it showed trials 2-11 cancelled
    # with no version though 2 and 3 had been saved: only a sweep failed "worker lost" was
    # read against its versions
    import multiprocessing

    from service.jobs import worker_id

    client = make_client(run_jobs=False)
    service = client.application.extensions["nnserve"]
    sweep_id = _start(client).json["id"]
    gone = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    worker = f"{worker_id().rsplit(':', 2)[0]}:{gone.pid}:1"  # a process of this host, ended
    lease = service.jobs.claim(worker, 9)["lease"]
    queued = {"status": "queued", "metrics": None, "version": None, "error": None}
    service.jobs.report(sweep_id, lease, {"epoch": 0, "epochs": 0, "loss": None,
                                          "accuracy": None, "trials": [queued] * 8}, {})
    fitted = service.train(TrainingRequest.model_validate({"model": "sw", **BASE}))
    saved = service.store.save("sw", fitted.model, dataset=fitted.dataset,
                               metrics=fitted.metrics(), history=fitted.fit.history,
                               x=fitted.x, y=fitted.y,
                               sweep={"id": sweep_id, "trial": 1, "parameters": {}})
    service.jobs.cancel(sweep_id)  # asked; the worker is gone before it sees it
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json
    assert sweep["status"] == "cancelled"
    trial = sweep["trials"][1]
    assert (trial["status"], trial["version"]) == ("succeeded", saved["version"]), trial
    assert sweep["trials"][0]["version"] is None


def test_a_grid_key_under_dataset_still_shares_the_data_set_it_sets_alike(make_client):
    # any grid key under `dataset` (even one that sets the base's own kind) made every
    # trial a copy of the base's points, parsed anew: 256 trials over 100,000 points took
    # 58 s and 2.2 GB of the worker that answered
    import tracemalloc

    from service.schemas import SweepRequest
    from service.sweeps import check_sweep

    service = make_client(run_jobs=False).application.extensions["nnserve"]
    points = [[(i % 200) / 100 - 1, (i // 200) / 50 - 1] for i in range(20_000)]
    labels = [int(x1 > x2) for x1, x2 in points]
    req = SweepRequest.model_validate({
        "model": "one", "base": {"dataset": {"kind": "points", "points": points,
                                             "labels": labels},
                                 "training": {"epochs": 1, "starts": 1}},
        "grid": {"network.seed": list(range(32)), "dataset.kind": ["points"]}})
    tracemalloc.start()
    try:
        trials = check_sweep(req, service.settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len({id(t.dataset) for t in trials}) == 1  # one data set, parsed once
    assert peak < 30e6, peak
