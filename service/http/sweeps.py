"""/v1/sweeps: start, watch, list and cancel sweeps (a grid of trainings, run as one job)."""

from flask import Blueprint

from ..schemas import PlotQuery, Sweep, SweepList, SweepListQuery, SweepRequest
from ..sweeps import sweep_summary, sweep_view
from .api import json_response, operation, parse_body, parse_query, service

bp = Blueprint("sweeps", __name__, url_prefix="/v1/sweeps")


@bp.post("")
@operation("Start a sweep", access="write", body=SweepRequest, response=Sweep, status=202,
           errors=(400, 413, 415, 422, 503, 507))
def create():
    """Queue a sweep: every combination of the grid is a trial, each checked as a training
    before any work; 422 naming the grid key of a value refused."""
    job = service().submit_sweep(parse_body(SweepRequest))
    return json_response(sweep_view(job), 202, {"Location": f"/v1/sweeps/{job['id']}"})


@bp.get("")
@operation("List sweeps", query=SweepListQuery, response=SweepList, errors=(422, 503))
def index():
    """Newest first, paginated by limit and offset; each with its progress and best trial."""
    query = parse_query(SweepListQuery)
    jobs, total = service().list_sweeps(query)
    return json_response({"sweeps": [sweep_summary(job) for job in jobs], "total": total,
                          "limit": query.limit, "offset": query.offset})


@bp.get("/<sweep_id>")
@operation("Get a sweep", response=Sweep, errors=(404, 503))
def show(sweep_id):
    """Status, progress, each trial's parameters, status, metrics and version, and the best."""
    return json_response(sweep_view(service().sweep(sweep_id)))


@bp.delete("/<sweep_id>")
@operation("Cancel a sweep", access="write", response=Sweep, errors=(404, 409, 503, 507))
def cancel(sweep_id):
    """Cancel the trials that have not finished (they save no version); 409 once it ended."""
    return json_response(sweep_view(service().cancel_sweep(sweep_id)))


@bp.get("/<sweep_id>/plot.png")
@operation("Plot a sweep's comparison", query=PlotQuery, response=None, content="image/png",
           errors=(404, 422))
def plot(sweep_id):
    """The learning curves overlaid (coloured by the parameter that matters most), the metric
    against each swept parameter, and the decision boundaries of the best three."""
    query = parse_query(PlotQuery)
    png = service().sweep_figure(sweep_id, query.width, query.height)
    return png, 200, {"Content-Type": "image/png"}
