"""What the views share: the operation decorator, strict request parsing, JSON responses.

A view declares its contract with @operation (who may call it, what it takes
and answers); the auth hook and /openapi.json both read that declaration, so
the documentation and the behaviour come from one place.
"""

from flask import Response, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wsgi import get_content_length

from .. import jsoncodec
from ..errors import InvalidInput


def operation(summary, *, access="read", body=None, query=None, response=None, status=200,
              content="application/json", errors=(), binary=None, headers=(), also=()):
    """Attach the operation's contract to a view: access is "open", "read" or "write".

    also lists (status, description) of other successful answers with the same body.
    binary, when given, describes an application/octet-stream form of body and response;
    headers lists the (name, description) of the request headers the view reads."""

    def attach(view):
        view.operation = {"summary": summary, "access": access, "body": body, "query": query,
                          "response": response, "status": status, "content": content,
                          "errors": tuple(errors), "binary": binary,
                          "headers": tuple(headers), "also": tuple(also),
                          "doc": (view.__doc__ or "").strip()}
        return view

    return attach


def service():
    """Return this app's Service."""
    return current_app.extensions["nnserve"]


def parse_body(model: type[BaseModel], raw=None):
    """Return the JSON body (or raw, json_body()'s bytes) validated by model with the
    service's limits; 415/400/422 problems otherwise."""
    raw = json_body() if raw is None else raw
    return model.model_validate(parse_json(raw), context=service().limits)


def json_body():
    """Return the raw body of an application/json request; 415/413 problems otherwise."""
    # The exact header needs no parsing; anything else ("...; charset=utf-8") is parsed.
    environ = request.environ
    if (environ.get("CONTENT_TYPE") != "application/json"
            and request.mimetype != "application/json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.mimetype or 'no content type'!r})"
        )
    return read_body(environ)


def read_body(environ=None):
    """Return the raw request body; 413 when it is over MAX_CONTENT_LENGTH, chunked or not."""
    environ, limit = environ or request.environ, current_app.config["MAX_CONTENT_LENGTH"]
    length = get_content_length(environ)
    if length is not None and length <= limit:
        # A declared length within the limit is read as is: Werkzeug's guarded stream
        # (request.get_data) costs more than parsing a small body.
        data = environ["wsgi.input"].read(length) if length else b""
        if len(data) != length:
            raise BadRequest(f"the body ended after {len(data)} of {length} bytes")
        return data
    if length is not None:  # declared over the limit: refused unread
        raise RequestEntityTooLarge()
    # Chunked (no Content-Length): read one byte past the limit from the server's decoded
    # stream (Werkzeug's guarded stream cut such a body at the limit, so a body of exactly
    # the limit was refused). One whose sizes run past the limit the worker refuses itself
    # (gunicorn_worker.py): its last chunk's data may never come.
    try:
        data = environ["wsgi.input"].read(limit + 1)
    except OSError:  # the client stopped sending mid-body (gunicorn's NoMoreData)
        raise BadRequest("the chunked body ended before its last chunk") from None
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def parse_json(raw: bytes):
    """Return the decoded JSON document; refuse duplicate keys and absurd nesting (400)."""
    try:
        return jsoncodec.loads(raw)
    except ValueError as exc:  # bad syntax or UTF-8, a duplicate key, nesting past the stack
        raise BadRequest(f"malformed JSON: {exc}") from None


def parse_query(model: type[BaseModel]):
    """Return the query string validated by model (422 naming the parameter otherwise)."""
    # A repeated parameter is refused, naming it, rather than silently cut to its first (no
    # query here takes a list: validating the list said "Input should be a valid integer").
    args = {}
    for name, values in request.args.lists():
        if len(values) > 1 and name in model.model_fields:  # one unknown is refused as such
            raise InvalidInput(f"query parameter {name[:40]!r} is given {len(values)} times: "
                               "give it once", field=(name[:40],))
        args[name] = values[0]
    return model.model_validate(args)


def json_response(body, status=200, headers=None, content_type="application/json"):
    """Return a compact JSON response."""
    return Response(jsoncodec.dumps(body), status=status, headers=headers,
                    content_type=content_type)

