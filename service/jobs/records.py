"""A job as a record: its fields, and the JSON its structured fields are stored as."""

import json
import math
import uuid

FIELDS = ("id", "model", "status", "request", "progress", "history", "result", "error",
          "created_at", "started_at", "finished_at", "worker", "heartbeat_at", "cancel_requested",
          "lease", "kind", "saving")
JSON_FIELDS = ("request", "progress", "history", "result")
# A job as lists show it: the request's summary in place of the request, no history (the
# two fields that grow with a job's data set and epochs; the one-job read has them).
SUMMARY_FIELDS = tuple(f for f in FIELDS if f not in ("request", "history"))
# A report's snapshot (a JSON dict, service/snapshots.py) is stored beside the job, outside
# FIELDS: read only by JobBackend.snapshot(), and at most this long as JSON text.
MAX_SNAPSHOT_CHARS = 32_768


def new_job(model, request, epochs):
    """Return the id and the JSON fields of a job about to be queued."""
    progress = {"epoch": 0, "epochs": epochs, "loss": None, "accuracy": None, "elapsed_s": 0.0}
    history = {"epoch": [], "loss": [], "accuracy": []}
    return uuid.uuid4().hex, {"request": dumps(request), "progress": dumps(progress),
                              "history": dumps(history), "summary": dumps(summary_of(request))}


def summary_of(request):
    """Return a training request as lists show it: every list of points or labels in its
    data set replaced by its length (a user's data set can hold 100k points)."""
    dataset = request.get("dataset") if isinstance(request, dict) else None
    if not isinstance(dataset, dict):
        return request
    lists = {key: len(value) for key, value in dataset.items() if isinstance(value, list)}
    kept = {key: value for key, value in dataset.items() if key not in lists}
    if "points" in lists:
        kept["n"] = lists["points"]
    return {**request, "dataset": kept}


def dumps(value):
    """Return value as JSON text, NaN and infinities as null (JSON has no such numbers)."""
    return json.dumps(_finite(value))


def snapshot_text(snapshot):
    """Return a report's snapshot as JSON text (None stays None); ValueError past
    MAX_SNAPSHOT_CHARS, so no backend ever stores an unbounded one."""
    if snapshot is None:
        return None
    text = dumps(snapshot)
    if len(text) > MAX_SNAPSHOT_CHARS:
        raise ValueError(f"a snapshot of {len(text)} characters is over {MAX_SNAPSHOT_CHARS}")
    return text


def job_of(row, fields=FIELDS):
    """Return a job dict from a row of fields (FIELDS, or SUMMARY_FIELDS then the summary),
    its JSON fields decoded."""
    if fields is SUMMARY_FIELDS:
        *row, summary = row
        job = {**dict(zip(fields, row, strict=True)), "request": json.loads(summary)}
    else:
        job = dict(zip(fields, row, strict=True))
    for key in JSON_FIELDS:
        if isinstance(job.get(key), str):
            job[key] = json.loads(job[key])
    job["attempt"] = int(job["started_at"] is not None)  # PgJobs, which claims again, counts
    job["cancel_requested"] = bool(job["cancel_requested"])
    job["saving"] = bool(job["saving"])
    return job


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
