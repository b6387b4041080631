"""A sweep as the API shows it: its request, each trial's parameters and state, and the best."""

from ..jobs import TERMINAL
from .grid import best_trial, expand

UNFINISHED = ("queued", "running")


def sweep_view(job):
    """Return the public form of a sweep job (GET /v1/sweeps/{id})."""
    req = job["request"]
    params = expand(req["grid"])
    states = ((job["result"] or {}).get("trials") or (job["progress"] or {}).get("trials")
              or [{"status": "queued", "metrics": None, "version": None, "error": None}
                  for _ in params])
    ended = job["status"] in TERMINAL
    trials = []
    for i, (p, state) in enumerate(zip(params, states, strict=True)):
        status = state["status"]
        if ended and status in UNFINISHED:  # the sweep ended before this trial did
            status = "cancelled" if job["status"] == "cancelled" else "failed"
        trials.append({"trial": i, "parameters": p, **state, "status": status})
    best = best_trial(trials, req["metric"])
    done = sum(t["status"] not in UNFINISHED for t in trials)
    return {"id": job["id"], "status": job["status"], "model": job["model"],
            "metric": req["metric"], "grid": req["grid"], "base": req["base"],
            "progress": {"done": done, "total": len(trials),
                         "elapsed_s": (job["progress"] or {}).get("elapsed_s", 0.0)},
            "trials": trials, "best": None if best is None else trials[best],
            "error": job["error"], "created_at": job["created_at"],
            "started_at": job["started_at"], "finished_at": job["finished_at"]}


def sweep_summary(job):
    """Return a sweep's line in GET /v1/sweeps: the view without its trials."""
    view = sweep_view(job)
    del view["trials"], view["base"]
    return view
