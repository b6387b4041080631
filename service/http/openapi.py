"""OpenAPI 3.1, generated from the routes' @operation declarations and the pydantic models."""

import re
from functools import cache

from pydantic.json_schema import models_json_schema

from ..inference import ProtocolError
from ..names import MAX_VERSION, NAME_PATTERN
from ..schemas import Problem
from .v2 import speaks_v2

_OCTETS = "application/octet-stream"
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_STATUS_TEXT = {400: "Malformed request", 401: "Missing or bad token", 404: "Not found",
                405: "Method not allowed", 408: "Request (or its body) too slow",
                409: "Conflict with the resource's state",
                413: "Body too large", 414: "Request line too long",
                415: "Unsupported media type", 422: "Invalid input or over a limit",
                431: "Request headers too large", 500: "Internal error", 503: "Unavailable",
                507: "Store full"}


@cache
def _schemas(models):
    """Return ({(model, mode): schema ref}, {name: schema}): requests validate, responses dump."""
    pairs = [(m, mode) for m in models for mode in ("validation", "serialization")]
    refs, top = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    return refs, top.get("$defs", {})


def openapi_document(app):
    """Return the OpenAPI 3.1 document of app's routes."""
    views = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if hasattr(view, "operation"):
            views.append((rule, view.operation))
    models = {m for _, op in views for m in (op["body"], op["query"], op["response"])
              if isinstance(m, type)}
    models |= {Problem, ProtocolError}
    refs, components = _schemas(tuple(sorted(models, key=lambda m: m.__name__)))
    paths = {}
    for rule, op in sorted(views, key=lambda item: item[0].rule):
        path = _PARAM.sub(r"{\2}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, op, refs, app)
    security = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {"openapi": "3.1.0",
            "info": {"title": "nnserve", "version": "1.0.0",
                     "description": "Train tiny NumPy networks and serve their predictions."},
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": security}}


def _operation(rule, op, refs, app):
    out = {"operationId": rule.endpoint.replace(".", "_"), "summary": op["summary"],
           "description": op["doc"], "parameters": _parameters(rule, op, refs),
           "responses": _responses(_PARAM.sub(r"{\2}", rule.rule), op, refs, app)}
    if op["body"] == "npz":
        binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        multipart = {"schema": {"type": "object", "required": ["file"],
                                "properties": {"file": binary["schema"]}}}
        out["requestBody"] = {"required": True, "content": {
            "application/octet-stream": binary, "multipart/form-data": multipart}}
    elif op["body"] is not None:
        out["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(op["body"], "validation")]}}}
        if op["binary"]:
            out["requestBody"]["description"] = op["binary"]
            out["requestBody"]["content"][_OCTETS] = _binary(op["binary"])
    if op["access"] != "open":
        out["security"] = [{"bearer": []}, {}]
    return out


def _parameters(rule, op, refs):
    params = []
    for converter, name in _PARAM.findall(rule.rule):
        schema = ({"type": "integer", "minimum": 1, "maximum": MAX_VERSION} if converter == "int"
                  else {"type": "string", "pattern": NAME_PATTERN} if name in ("name", "alias")
                  else {"type": "string"})
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op["query"] is not None:
        schema = op["query"].model_json_schema()
        for name, prop in schema["properties"].items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    for name, description in op.get("headers", ()):
        params.append({"name": name, "in": "header", "required": False,
                       "description": description, "schema": {"type": "string"}})
    return params


def _responses(path, op, refs, app):
    ok = {"description": op["summary"]}
    if op["response"] is not None:
        ok["content"] = {op["content"]: {"schema": refs[(op["response"], "serialization")]}}
        if op["binary"]:
            ok["content"][_OCTETS] = _binary(op["binary"])
    elif op["status"] != 204:
        ok["content"] = {op["content"]: {"schema": {"type": "string"}}}
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    # 408, 414, 431: refused by the worker or gunicorn (gunicorn_worker.py) before any view
    statuses = set(op["errors"]) | {405, 408, 414, 431, 500}
    if op["body"] is not None:
        statuses |= {400, 413, 415, 422}
    if path.startswith("/v1/"):  # a query parameter it does not take (app._refuse_unasked_query)
        statuses.add(422)
    if "{" in path:
        statuses |= {404}
    if op["access"] != "open":  # NNSERVE_API_TOKEN (and _PROTECT_READS for reads) can ask
        statuses.add(401)
    if speaks_v2(path):  # the protocol's {"error": ...}, 400 for what /v1 calls 422
        statuses = {400 if s == 422 else s for s in statuses}
        error = {"application/json": {"schema": refs[(ProtocolError, "serialization")]}}
    responses = {str(op["status"]): ok}
    for status, description in op.get("also", ()):
        responses[str(status)] = {**ok, "description": description}
    for status in sorted(statuses):  # on /v2 even gunicorn's refusals are the protocol's
        content = error if speaks_v2(path) else problem
        responses[str(status)] = {"description": _STATUS_TEXT[status], "content": content}
    return responses


def _binary(description):
    """Return the media type object of a binary tensor body."""
    return {"schema": {"type": "string", "contentMediaType": _OCTETS,
                       "description": description}}
