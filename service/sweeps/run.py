"""A sweep's work, as its job: trials of one network and data set trained together with
fit_many, each saved as a version of the sweep's model, the best aliased "best".

Progress goes through the runner's report(); the report before each group's saves is a
last one (written at once: a cancel seen there saves nothing of that group), so a
version is saved only for a trial of a sweep still running, and a later report lets
the time limit apply again.
"""

import json
import time

from .. import trainer
from ..errors import ModelNotFound
from ..nn.model import Model
from ..nn.network import count_params
from ..nn.training import fit_many
from ..schemas import SweepRequest, TrainingRequest
from .grid import best_trial, expand, ranked_trials, trial_requests

BEST = "best"
# Weights and biases of the networks one fit_many pass holds (every trial's starts): its
# memory is about 15 copies of them (250 MB at the bound). A group past it trains in
# passes of fewer trials, each trial's arithmetic the same (a stack of one is alone): 256
# trials of eight hidden layers of 256 units, 4 starts each, would have held 48 GB as one
# stack. The lab's 64-trial sweep stacks 9,472.
MAX_STACKED_PARAMS = 2**21


def run_sweep(service, job, report, save=True):
    """Run a sweep job's trials; return its result, or None if told to stop. save=False
    (the command line's choice) trains and measures them without saving or aliasing."""
    req = SweepRequest.model_validate(job["request"])
    params = expand(req.grid)
    trials = trial_requests(req, lambda body, _: TrainingRequest.model_validate(body))
    states = [{"status": "queued", "metrics": None, "version": None, "error": None}
              for _ in trials]
    if save and job.get("attempt", 1) > 1:  # run again after its worker was lost (PostgreSQL)
        reported = (job.get("progress") or {}).get("trials") or []
        for i, state in enumerate(reported[:len(states)]):  # ended, as the last attempt said
            if state.get("status") in ("succeeded", "failed"):
                states[i] = state  # a version deleted since is not saved again
        for i, meta in saved_trials(service.store, req.model, job["id"]).items():
            states[i] = saved_state(meta)
    groups = [part for members in _groups(trials) for part in _passes(
        [i for i in members if states[i]["status"] == "queued"], trials)]
    fence = service.job_fence(job) if save else None
    started = time.monotonic()

    def progress(epoch=0, epochs=0):
        done = sum(s["status"] not in ("queued", "running") for s in states)
        return {"epoch": epoch, "epochs": epochs, "loss": None, "accuracy": None,
                "elapsed_s": round(time.monotonic() - started, 3), "done": done,
                "total": len(states), "trials": states}

    for n, members in enumerate(groups):
        for i in members:
            states[i]["status"] = "running"
        fits, fitted_at = _fit_group([trials[i] for i in members], progress, report)
        if fits is None or report(progress(), {}, last=True):
            return None
        for i, fit in zip(members, fits, strict=True):
            states[i] = _save(service if save else None, job["id"], req.model, trials[i],
                              params[i], i, fit, fitted_at, fence)
        if n < len(groups) - 1:
            report(progress(), {})  # saved: the time limit and shutdowns apply again
    best = best_trial(states, req.metric)
    if save:
        _alias_best(service.store, req.model, job["id"], states, ranked_trials(states, req.metric))
    return {"trials": states, "best": best}


def saved_trials(store, name, sweep_id):
    """Return {trial: meta} of the versions an earlier attempt of the sweep saved, so that it
    goes on from them instead of saving them twice (each trial trains alone as it does with
    the others: fit_many)."""
    try:
        metas = store.versions(name)
    except ModelNotFound:
        return {}
    saved = {}
    for meta in metas:
        trial = trial_of(meta, sweep_id)
        if trial is not None:
            saved.setdefault(trial, meta)
    return saved


def trial_of(meta, sweep_id):
    """Return the trial of sweep_id whose version meta is, or None (another's version: a
    version number is given again once its model is deleted)."""
    made_by = meta.get("sweep") or {}
    trial = made_by.get("trial")
    return trial if made_by.get("id") == sweep_id and isinstance(trial, int) else None


def _alias_best(store, name, sweep_id, states, ranked):
    """Alias "best" the version of the best trial whose version is still its own: a user may
    have deleted a trial's version, or the whole model (whose numbering then starts again),
    while the sweep ran. Nothing is aliased when no trial's version is left."""
    for i in ranked:
        version = states[i]["version"]
        try:
            if trial_of(store.meta(name, version), sweep_id) == i:
                store.set_alias(name, BEST, version)
                return
        except ModelNotFound:  # deleted since (before or during set_alias): the next one
            continue


def _groups(trials):
    """Return the indices of the trials that share a network and a data set (fit_many's
    unit), in order of first appearance."""
    groups, datasets = {}, {}  # id(a data set) -> its JSON: a shared one is dumped once
    for i, t in enumerate(trials):
        if id(t.dataset) not in datasets:
            datasets[id(t.dataset)] = json.dumps(t.dataset.model_dump(mode="json"))
        key = (datasets[id(t.dataset)],
               json.dumps(t.network.model_dump(mode="json", exclude={"seed"})))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _passes(members, trials):
    """Return members (trials sharing a network and a data set) cut into the passes of
    fit_many that keep MAX_STACKED_PARAMS, in order; none when members is empty."""
    if not members:
        return []
    arch, _ = trainer.build_network(trials[members[0]])
    per_trial = count_params(arch) * max(trials[i].training.starts for i in members)
    size = max(1, MAX_STACKED_PARAMS // per_trial)
    return [members[k:k + size] for k in range(0, len(members), size)]


def _fit_group(trials, progress, report):
    """Return (FitResults, (x, y, summary, seconds)) of trials trained together, or (None,
    None) when told to stop."""
    x, y, summary = trainer.build_dataset(trials[0].dataset)
    arch, _ = trainer.build_network(trials[0])
    configs = [trainer.build_network(t)[1] for t in trials]
    epochs = max(c.epochs for c in configs)

    def on_progress(epoch, rows):
        return report(progress(epoch, epochs), {})

    report_every = max(1, min(100, trainer.REPORT_WORK // len(x)))
    started = time.monotonic()
    fits = fit_many(arch, x, y, configs, on_progress, report_every,
                    trainer.split_seed(summary))
    if any(f.stop_reason == "cancelled" for f in fits):
        return None, None
    return fits, (arch, configs, x, y, summary, (time.monotonic() - started) / len(trials))


def _save(service, sweep_id, name, trial, parameters, index, fit, fitted_at, fence):
    """Return the state of a trained trial, saved as a version (service None: not saved)
    unless it diverged; fenced by the sweep job's lease."""
    arch, configs, x, y, summary, seconds = fitted_at
    if fit.params is None:
        return {"status": "failed", "metrics": None, "version": None,
                "error": f"training diverged at epoch {fit.epochs_run}"}
    _, config = trainer.build_network(trial)
    fitted = trainer.Fitted(Model(arch, fit.params, config), fit, x, y, summary, seconds)
    if service is None:
        return {"status": "succeeded", "metrics": fitted.metrics(), "version": None,
                "error": None}
    meta = service.store.save(name, fitted.model, dataset=summary, metrics=fitted.metrics(),
                              history=fit.history, x=x, y=y,
                              sweep={"id": sweep_id, "trial": index, "parameters": parameters},
                              fence=fence)
    return saved_state(meta)


def saved_state(meta):
    """Return the state of a trial whose version meta is (one shape for a trial saved now,
    found saved by a second attempt, or shown saved after its worker was lost)."""
    return {"status": "succeeded", "metrics": meta["metrics"], "version": meta["version"],
            "error": None}
