"""/v1/trainings: submit, watch, list and cancel training jobs."""

from functools import partial

from flask import Blueprint, Response, request

from .. import streams
from ..jobs import TERMINAL, summary_of
from ..schemas import (
    BoundaryQuery,
    Job,
    JobList,
    JobListQuery,
    JobQuery,
    JobSummary,
    PlotQuery,
    TrainingRequest,
    WaitQuery,
)
from .api import json_response, operation, parse_body, parse_query, service

bp = Blueprint("trainings", __name__, url_prefix="/v1/trainings")


def public(job, view="full"):
    """Return the job's documented fields in a view (the backend's bookkeeping stays inside)."""
    if view == "full":
        return {key: job[key] for key in Job.model_fields}
    if "history" in job:  # a full job shown as a summary
        job = {**job, "request": summary_of(job["request"])}
    return {key: job[key] for key in JobSummary.model_fields}


@bp.post("")
@operation("Start a training job", access="write", body=TrainingRequest, query=WaitQuery,
           response=JobSummary, status=202, errors=(400, 413, 415, 422, 503, 507),
           also=((201, "The job, created and already ended within ?wait"),))
def create():
    """Queue a job: 202 while it is queued or running. With ?wait=S, answer when it ends or
    after S seconds (at most 60): 201 with the ended job (whatever its status) when it ended
    within the wait, else 202. The answer is the job's summary (no history) unless
    view=full."""
    query = parse_query(WaitQuery)
    job = service().submit(parse_body(TrainingRequest), query.wait)
    status = 201 if job["status"] in TERMINAL else 202
    return json_response(public(job, query.view), status,
                         {"Location": f"/v1/trainings/{job['id']}"})


@bp.get("")
@operation("List training jobs", query=JobListQuery, response=JobList, errors=(422, 503))
def index():
    """Newest first, filtered by status and model, paginated by limit and offset; each job a
    summary (no history, the data set's points counted) unless view=full."""
    query = parse_query(JobListQuery)
    jobs, total = service().list_jobs(query)
    return json_response({"jobs": [public(job, query.view) for job in jobs], "total": total,
                          "limit": query.limit, "offset": query.offset})


@bp.get("/<job_id>")
@operation("Get a training job", query=JobQuery, response=Job, errors=(404, 422, 503))
def show(job_id):
    """Status, progress, history and result of one job; with view=summary, as lists show it
    (no history, the data set's points counted)."""
    view = parse_query(JobQuery).view
    return json_response(public(service().job(job_id), view))


@bp.delete("/<job_id>")
@operation("Cancel a training job", access="write", response=Job, errors=(404, 409, 503, 507))
def cancel(job_id):
    """Cancel a queued or running job (no model is saved); 409 if it has already ended."""
    return json_response(public(service().cancel(job_id)))


@bp.get("/<job_id>/events")
@operation("Stream a training job's progress", response=None, content="text/event-stream",
           errors=(404, 422, 503), headers=[("Last-Event-ID", "resume after this event id "
                                             "(an epoch); sent by EventSource on reconnect")])
def events(job_id):
    """Server-Sent Events: a progress event (id: its epoch) each time the job reports, then
    an end event with its status and result; Last-Event-ID resumes after that epoch. 503
    with Retry-After when the worker has NNSERVE_MAX_STREAMS streams open."""
    sock = request.environ.get("gunicorn.socket")  # the client's: is it still there?
    peer = streams.always_open if sock is None else partial(streams.peer, sock)
    stream = service().job_events(job_id, request.headers.get("Last-Event-ID"), peer)
    return Response(stream, content_type="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.get("/<job_id>/plot.png")
@operation("Plot a training job's learning curve", query=PlotQuery, response=None,
           content="image/png", errors=(404, 422))
def plot(job_id):
    """Loss and accuracy against epoch so far, as a PNG (also while the job runs)."""
    query = parse_query(PlotQuery)
    png = service().job_figure(job_id, query.width, query.height)
    return png, 200, {"Content-Type": "image/png"}


@bp.get("/<job_id>/boundary.png")
@operation("Draw a training job's decision boundary now", query=BoundaryQuery, response=None,
           content="image/png", errors=(404, 409, 422, 503))
def boundary(job_id):
    """P(class 1) over the plane, its 0.5 contour and the job's points, from the weights of
    its latest progress report (also once it has ended); 409 with Retry-After while it has
    reported none."""
    query = parse_query(BoundaryQuery)
    png = service().boundary_figure(job_id, query.width, query.height)
    return png, 200, {"Content-Type": "image/png"}
