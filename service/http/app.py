"""The app factory: settings read once, one Service, blueprints, and the request hooks."""

import hmac
import logging
import re
import time
import uuid
from pathlib import Path

from flask import Flask, current_app, g, request

from .. import metrics
from ..core import Service
from ..errors import Unauthorized
from ..settings import Settings
from . import dashboard, models, ops, problems, trainings

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PACKAGE = Path(__file__).resolve().parents[1]  # holds templates/ and static/


def create_app(settings=None):
    """Return the nnserve Flask app for settings (default: from NNSERVE_* variables)."""
    settings = settings or Settings()
    logging.getLogger("nnserve").setLevel(settings.log_level.upper())
    app = Flask("nnserve", root_path=str(PACKAGE))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["NNSERVE_AUTH"] = settings.api_token is not None
    app.extensions["nnserve"] = Service(settings).start()
    for bp in (ops.bp, trainings.bp, models.bp, dashboard.bp):
        app.register_blueprint(bp)
    problems.register(app)
    app.before_request(_start)
    app.before_request(_authorize)
    app.after_request(_finish)
    return app


def _start():
    g.started = time.perf_counter()
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def _authorize():
    """Require the bearer token on writes (and on reads with NNSERVE_PROTECT_READS)."""
    settings = _settings()
    view = request.url_rule and _view()
    if settings.api_token is None or view is None:
        return
    access = view.operation["access"]
    if access == "open" or (access == "read" and not settings.protect_reads):
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.api_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'")


def _finish(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    route = request.url_rule.rule if request.url_rule else "unmatched"
    status = str(response.status_code)
    metrics.REQUESTS.labels(request.method, route, status).inc()
    if "started" in g:
        metrics.LATENCY.labels(request.method, route, status).observe(
            time.perf_counter() - g.started)
    return response


def _settings():
    return current_app.extensions["nnserve"].settings


def _view():
    view = current_app.view_functions.get(request.endpoint)
    return view if hasattr(view, "operation") else None
