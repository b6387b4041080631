"""The app factory: settings read once, one Service, blueprints, and the request hooks."""

import hmac
import logging
import random
import re
import time
from pathlib import Path

from flask import Flask, current_app, g, request
from werkzeug.routing import IntegerConverter

from .. import backends, metrics
from ..core import Service
from ..errors import Unauthorized, UnsupportedEncoding, UnsupportedTransferCoding
from ..request_scan import undecoded_coding, undecoded_detail
from ..schemas.requests import NoQuery
from ..settings import read_settings
from . import dashboard, models, ops, problems, sweeps, trainings, v2
from .api import parse_query

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PACKAGE = Path(__file__).resolve().parents[1]  # holds templates/ and static/


def create_app(settings=None, service=None):
    """Return the nnserve Flask app over service, a started Service (default: one built on
    the backends of settings, themselves read from NNSERVE_* variables by default)."""
    if service is None:
        settings = settings or read_settings()
        store, jobs = backends.build(settings)
        service = Service(settings, store=store, jobs=jobs).start()
    elif service.jobs is None or settings not in (None, service.settings):
        raise ValueError("create_app needs a service with a job backend, and no other settings")
    settings = service.settings
    logging.getLogger("nnserve").setLevel(settings.log_level.upper())
    app = Flask("nnserve", root_path=str(PACKAGE))
    app.url_map.converters["int"] = AsciiInteger  # before the routes are added
    # "/v1/models/m//versions/1" is no path of ours: a 404, not Werkzeug's 308 to the path
    # without the empty segment (an HTML body, its host the Host header's; DELETE too)
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["NNSERVE_AUTH"] = settings.api_token is not None
    app.extensions["nnserve"] = service
    for bp in (ops.bp, trainings.bp, sweeps.bp, models.bp, dashboard.bp, v2.bp):
        app.register_blueprint(bp)
    problems.register(app)
    app.before_request(_start)
    app.before_request(_authorize)
    app.before_request(_refuse_encoded_bodies)
    app.before_request(_refuse_unasked_query)
    app.after_request(_finish)
    return app


class AsciiInteger(IntegerConverter):
    """A version number in a path, in ASCII digits and without leading zeros: Werkzeug's
    \\d+ also matches "١", "１" or "01", which int() reads as 1, so one version answered
    under many names (0 is matched, to be refused naming the version)."""

    regex = r"[1-9][0-9]*|0"


def _start():
    g.started = time.perf_counter()
    sent = request.environ.get("HTTP_X_REQUEST_ID", "")
    # 32 random hex digits, as uuid4().hex gave, without a system call per request (the
    # random module is reseeded in every forked worker; an id needs no secrecy)
    g.request_id = sent if REQUEST_ID.fullmatch(sent) else f"{random.getrandbits(128):032x}"


def _authorize():
    """Require the bearer token on writes (and on reads with NNSERVE_PROTECT_READS)."""
    settings = _settings()
    if settings.api_token is None:
        return
    view = request.url_rule and _view()
    if view is None:
        return
    access = view.operation["access"]
    if access == "open" or (access == "read" and not settings.protect_reads):
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    secret = settings.api_token.get_secret_value()
    # A header arrives as its bytes read as Latin-1 (WSGI). Back to those bytes, a token
    # sent as UTF-8 (curl's "tok€n") matches the setting's UTF-8, and one sent as Latin-1
    # (a browser's fetch of "geheimü") its Latin-1; only a header's own white space (space
    # and tab) is stripped: "\x85" or "\xa0" may be a UTF-8 byte of the token.
    sent = token.strip(" \t").encode("latin-1")
    if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(sent, expected) for expected in _encodings(secret)):
        raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'")


def _encodings(secret):
    """Return the byte forms a client may send secret in: UTF-8, and Latin-1 where it can."""
    try:
        return secret.encode(), secret.encode("latin-1")
    except UnicodeEncodeError:
        return (secret.encode(),)


def _refuse_encoded_bodies():
    """Refuse a compressed body (415) rather than parse its bytes as JSON or a .npz, and a
    transfer coding nothing decodes (501)."""
    environ = request.environ
    transfer = environ.get("HTTP_TRANSFER_ENCODING")
    if transfer is not None and (coding := undecoded_coding(
            [transfer.encode("latin-1", "replace").strip().lower()])):
        raise UnsupportedTransferCoding(undecoded_detail(coding.decode("latin-1")))
    coding = environ.get("HTTP_CONTENT_ENCODING")
    if coding is None or coding.strip().lower() in ("", "identity"):
        return
    # only a body is refused: a GET with the header (some clients send it) has none to parse
    if environ.get("CONTENT_LENGTH", "0") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ:
        raise UnsupportedEncoding(coding)


def _refuse_unasked_query():
    """Refuse a query parameter on a /v1 operation that takes none (422 naming it), as the
    query models refuse one they do not know: /predict?threshold=0.9 would do nothing."""
    if not request.environ.get("QUERY_STRING") or not request.path.startswith("/v1/"):
        return
    view = request.url_rule and _view()
    if view is not None and view.operation["query"] is None:
        parse_query(NoQuery)


def _finish(response):
    headers = response.headers
    headers["X-Request-ID"] = g.get("request_id", "")
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Cache-Control", "no-store")
    if response.status_code == 204:
        headers.pop("Content-Type", None)  # no content, so no type (RFC 9110 section 8.3)
    rule = request.url_rule
    started = g.get("started")
    metrics.count_request(request.method, rule.rule if rule else "unmatched",
                          response.status_code,
                          None if started is None else time.perf_counter() - started)
    return response


def _settings():
    return current_app.extensions["nnserve"].settings


def _view():
    view = current_app.view_functions.get(request.endpoint)
    return view if hasattr(view, "operation") else None
