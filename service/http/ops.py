"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from flask import Blueprint, current_app

from .. import metrics
from ..schemas import Health
from .api import json_response, operation, service
from .openapi import openapi_document
from .problems import problem

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@operation("Liveness", access="open", response=Health)
def healthz():
    """Alive: answers without touching the disk."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
@operation("Readiness", access="open", response=Health, errors=(503,))
def readyz():
    """Ready when the store is readable and writable and the job backend answers."""
    problems = service().readiness()
    if problems:
        detail = "; ".join(f"{check}: {why}" for check, why in problems.items())
        return problem(503, "Service Unavailable", f"not ready: {detail}", checks=problems)
    return json_response({"status": "ready", "checks": {"store": "ok", "jobs": "ok"}})


@bp.get("/metrics")
@operation("Prometheus metrics", access="open", response=None, content="text/plain")
def prometheus():
    """Prometheus text format, aggregated over every worker process."""
    body = metrics.render(service().job_counts)
    return body, 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


@bp.get("/openapi.json")
@operation("OpenAPI 3.1 document", access="open", response=None)
def openapi():
    """This API's OpenAPI 3.1 description, generated from the pydantic models."""
    return json_response(openapi_document(current_app))
