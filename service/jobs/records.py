"""A job as a record: its fields, and the JSON its structured fields are stored as."""

import json
import math
import uuid

FIELDS = ("id", "model", "status", "request", "progress", "history", "result", "error",
          "created_at", "started_at", "finished_at", "worker", "heartbeat_at", "cancel_requested",
          "lease", "kind")
JSON_FIELDS = ("request", "progress", "history", "result")


def new_job(model, request, epochs):
    """Return the id and the JSON fields of a job about to be queued."""
    progress = {"epoch": 0, "epochs": epochs, "loss": None, "accuracy": None, "elapsed_s": 0.0}
    history = {"epoch": [], "loss": [], "accuracy": []}
    return uuid.uuid4().hex, {"request": dumps(request), "progress": dumps(progress),
                              "history": dumps(history)}


def dumps(value):
    """Return value as JSON text, NaN and infinities as null (JSON has no such numbers)."""
    return json.dumps(_finite(value))


def job_of(row):
    """Return a job dict from a row of FIELDS, its JSON fields decoded."""
    job = dict(zip(FIELDS, row, strict=True))
    for key in JSON_FIELDS:
        if isinstance(job[key], str):
            job[key] = json.loads(job[key])
    job["cancel_requested"] = bool(job["cancel_requested"])
    return job


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
