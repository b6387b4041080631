"""/v2: the Open Inference Protocol (KServe V2 REST), beside /v1.

Health, server and model metadata, model readiness and inference, so that
tritonclient, KServe's client and MLServer's tools work unmodified. Refusals are
the protocol's {"error": message} (problems.py renders them for every /v2 path).
"""

from flask import Blueprint, Response, request
from werkzeug.exceptions import UnsupportedMediaType

from .. import inference
from ..inference.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from .api import json_response, operation, read_body, service

PREFIX = "/v2"
bp = Blueprint("v2", __name__, url_prefix=PREFIX)
OCTETS = "application/octet-stream"
BINARY = ("The binary tensor extension: the JSON object, then each binary tensor's bytes "
          "(little-endian, row-major) in the order of the JSON; the header "
          "Inference-Header-Content-Length gives the JSON's length in bytes, and each binary "
          "tensor's parameters.binary_data_size its own.")


def speaks_v2(path):
    """Return True for a path of the protocol, whose refusals are {"error": message}."""
    return path == PREFIX or path.startswith(PREFIX + "/")


@bp.get("/health/live")
@operation("Server live (Open Inference Protocol)", access="open", response=ServerLive)
def live():
    """Alive: answers without touching the disk."""
    return json_response({"live": True})


@bp.get("/health/ready")
@operation("Server ready (Open Inference Protocol)", access="open", response=ServerReady,
           errors=(503,))
def ready():
    """Ready when the store is readable and writable and the job backend answers."""
    return json_response(inference.server_ready(service()))


@bp.get("")
@operation("Server metadata (Open Inference Protocol)", response=ServerMetadata)
def server_metadata():
    """The server's name, version and extensions; /v2 and /v2/ alike (clients ask for /v2)."""
    return json_response(inference.server_metadata())


# tritonclient asks for /v2 and follows no redirect; others ask for /v2/
bp.add_url_rule("/", "server_metadata_slash", server_metadata, methods=["GET"])


@bp.get("/models/<name>")
@operation("Model metadata, latest version", response=ModelMetadata, errors=(400, 404, 409))
def model_metadata(name):
    """The model's versions (as strings), platform, and input and output tensors."""
    return json_response(inference.model_metadata(service(), name))


@bp.get("/models/<name>/versions/<int:version>")
@operation("Model metadata, pinned version", response=ModelMetadata, errors=(400, 404, 409))
def version_metadata(name, version):
    """The model's versions (as strings), platform, and input and output tensors."""
    return json_response(inference.model_metadata(service(), name, version))


@bp.get("/models/<name>/ready")
@operation("Model ready, latest version", response=ModelReady, errors=(400, 404, 409))
def model_ready(name):
    """200 once the latest version loads and passes its checks."""
    return json_response(inference.model_ready(service(), name))


@bp.get("/models/<name>/versions/<int:version>/ready")
@operation("Model ready, pinned version", response=ModelReady, errors=(400, 404, 409))
def version_ready(name, version):
    """200 once the version loads and passes its checks."""
    return json_response(inference.model_ready(service(), name, version))


@bp.post("/models/<name>/infer")
@operation("Infer with the latest version", body=InferenceRequest, response=InferenceResponse,
           binary=BINARY, errors=(400, 404, 409, 413, 415))
def infer(name):
    """Input points [n, 2] (FP32 or FP64); outputs label (INT64) and probability."""
    return _infer(name, None)


@bp.post("/models/<name>/versions/<int:version>/infer")
@operation("Infer with a pinned version", body=InferenceRequest, response=InferenceResponse,
           binary=BINARY, errors=(400, 404, 409, 413, 415))
def infer_version(name, version):
    """Input points [n, 2] (FP32 or FP64); outputs label (INT64) and probability."""
    return _infer(name, version)


def _infer(name, version):
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r:.40} is not supported; "
                                   "send the body uncompressed")
    header_length = request.headers.get(inference.HEADER_LENGTH)
    body, json_length = inference.infer(service(), name, version, read_body(), header_length)
    if json_length is None:
        return Response(body, content_type="application/json")
    return Response(body, content_type=OCTETS, headers={inference.HEADER_LENGTH: json_length})
