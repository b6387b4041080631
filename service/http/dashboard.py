"""The HTML dashboard: the page, and the models and jobs fragments its script polls."""

from typing import get_args

from flask import Blueprint, render_template

from ..errors import ModelNotFound
from ..names import NAME_PATTERN
from ..percent import percent, short
from ..schemas import (
    Activation,
    CircleData,
    JobListQuery,
    LinearData,
    ModelPageQuery,
    NetworkSpec,
    SpiralData,
    SweepListQuery,
    TrainingSpec,
    XorData,
)
from ..sweeps import sweep_view
from .api import operation, parse_query, service

bp = Blueprint("dashboard", __name__)
bp.add_app_template_filter(percent)
bp.add_app_template_filter(short)
HTML = "text/html; charset=utf-8"
DATASETS = (XorData, LinearData, CircleData, SpiralData)  # the form's choices, the lab's first
# Nothing but this origin's files: no inline script, no CDN; blob: holds figures fetched with
# the token, data: is the empty favicon.
CSP = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


@bp.get("/")
@operation("Dashboard", access="open", content="text/html", response=None)
def index():
    """The dashboard page: models, jobs, a training form and a classifier canvas."""
    settings = service().settings
    return _html("dashboard.html", form=FORM, auth=settings.api_token is not None)


@bp.get("/dashboard/models")
@operation("Dashboard: models fragment", query=ModelPageQuery, content="text/html",
           response=None, errors=(422,))
def models():
    """A page of the models, by name, with their metrics and figures (loaded lazily, as
    they scroll into view), as an HTML fragment of the dashboard."""
    query = parse_query(ModelPageQuery)
    models, total = service().models_page(query.limit, query.offset)
    return _html("models.html", models=models, total=total, page=query,
                 protected=_reads_protected())


@bp.get("/dashboard/jobs")
@operation("Dashboard: jobs fragment", query=JobListQuery, content="text/html", response=None,
           errors=(422,))
def jobs():
    """Training jobs with their progress, newest first, as an HTML fragment of the dashboard."""
    query = parse_query(JobListQuery)
    jobs, total = service().list_jobs(query)
    return _html("jobs.html", jobs=jobs, total=total)


@bp.get("/dashboard/sweeps")
@operation("Dashboard: sweeps fragment", query=SweepListQuery, content="text/html",
           response=None, errors=(422,))
def sweeps():
    """Sweeps, newest first: each one's trials as a sortable table, links to their versions,
    and the comparison figure once it has ended, as an HTML fragment of the dashboard."""
    query = parse_query(SweepListQuery)
    jobs, total = service().list_sweeps(query)
    return _html("sweeps.html", sweeps=[sweep_view(job) for job in jobs], total=total,
                 metrics=("accuracy", "loss", "validation_accuracy", "validation_loss",
                          "epochs"), protected=_reads_protected())


@bp.app_template_global()
def model_versions(name):
    """Return every version of a model with its aliases (the model cards' history); none
    when the model went meanwhile."""
    try:
        return service().versions(name)
    except ModelNotFound:
        return []


def _html(template, **context):
    page = render_template(template, **context)
    return page, 200, {"Content-Type": HTML, "Content-Security-Policy": CSP}


def _reads_protected():
    """Return True when reads need the token, so images must be fetched with it."""
    settings = service().settings
    return settings.api_token is not None and settings.protect_reads


def _form():
    """Return the training form's choices and defaults, read from the request schemas."""
    network, training = NetworkSpec(), TrainingSpec()
    datasets = {}
    for spec in DATASETS:
        kind = get_args(spec.model_fields["kind"].annotation)[0]
        datasets[kind] = {name: field.default for name, field in spec.model_fields.items()
                          if name != "kind"}
    return {
        "name_pattern": NAME_PATTERN.strip("^$").replace("-]", r"\-]"),  # HTML's v-flag regex
        "datasets": datasets,
        "activations": get_args(Activation),
        "optimizers": get_args(TrainingSpec.model_fields["optimizer"].annotation),
        "hidden": " ".join(str(units) for units in network.hidden),
        "activation": network.activation,
        "optimizer": training.optimizer,
        "learning_rate": training.learning_rate,
        "epochs": training.epochs,
    }


FORM = _form()
