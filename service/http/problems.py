"""The one error handler: every failure becomes an RFC 9457 application/problem+json body,
or on /v2 the Open Inference Protocol's {"error": message}, 400 where /v1 says 422."""

import logging

from flask import current_app, g, request
from gunicorn.http.errors import ParseException
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import PROBLEM, ServiceError, problem_body
from .api import json_response
from .v2 import speaks_v2

log = logging.getLogger("nnserve")
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def problem(status, title, detail, headers=None, **extra):
    """Return a problem+json response (on /v2: the protocol's error object)."""
    if speaks_v2(request.path):  # the clients read "error"; the protocol has no 422
        return json_response({"error": detail}, 400 if status == 422 else status, headers)
    body = problem_body(status, title, detail, **extra)
    return json_response(body, status, headers, content_type=PROBLEM)


def on_service_error(exc: ServiceError):
    headers = {"WWW-Authenticate": 'Bearer realm="nnserve"'} if exc.status == 401 else exc.headers
    return problem(exc.status, exc.title, exc.detail, headers, **exc.extra)


def on_validation_error(exc: ValidationError):
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem(422, "Validation Error", f"{where}: {first['msg']}{more}", errors=errors)


def on_http_exception(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):
        detail = _too_large()
    else:
        detail = exc.description or exc.name
    allowed = getattr(exc, "valid_methods", None)
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return problem(exc.code or 500, exc.name, detail, headers)


def _too_large():
    """Name the limit a 413 met: the body's, or Werkzeug's form limits (it raises the same
    exception for each, so a form within the body limit met one of those)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if request.mimetype in FORMS and (length is None or length <= limit):
        return (f"form over the limits of {request.max_form_parts} parts and "
                f"{request.max_form_memory_size} bytes in one field that is not a file")
    return f"request body over the limit of {limit} bytes (NNSERVE_MAX_BODY_BYTES)"


def on_malformed_body(exc: ParseException):
    """gunicorn's reader refusing the body the app is reading (a bad chunk size, say)."""
    return problem(400, "Bad Request", f"malformed request body: {exc}")


def on_unexpected(exc: Exception):
    log.exception("unhandled error (request id %s)", g.get("request_id"))
    return problem(500, "Internal Server Error",
                   f"internal error; quote request id {g.get('request_id')} when reporting it")


def register(app):
    """Install the handlers on app."""
    app.register_error_handler(ServiceError, on_service_error)
    app.register_error_handler(ValidationError, on_validation_error)
    app.register_error_handler(HTTPException, on_http_exception)
    app.register_error_handler(ParseException, on_malformed_body)
    app.register_error_handler(Exception, on_unexpected)
