"""The Open Inference Protocol's operations over a Service: metadata, readiness, inference."""

from importlib.metadata import PackageNotFoundError, version

from ..errors import CorruptModel, ModelNotFound, ServiceError
from . import tensors

SERVER = "nnserve"
PLATFORM = "nnserve_numpy"
EXTENSIONS = ("binary_tensor_data",)
DATATYPES = {"float64": "FP64", "float32": "FP32"}  # a model's dtype -> its tensors' type


class NotReady(ServiceError):
    status = 503
    title = "Service Unavailable"


def server_metadata():
    """Return the server's name, version and protocol extensions."""
    try:
        release = version(SERVER)
    except PackageNotFoundError:  # run from a source tree that was never installed
        release = "unknown"
    return {"name": SERVER, "version": release, "extensions": list(EXTENSIONS)}


def server_ready(svc):
    """Return {"ready": True}, or raise NotReady naming each failing dependency."""
    problems = svc.readiness()
    if problems:
        detail = "; ".join(f"{check}: {why}" for check, why in problems.items())
        raise NotReady(f"not ready: {detail}")
    return {"ready": True}


def model_metadata(svc, name, version=None):
    """Return a model's versions and signature: the version's own float type (None: latest)."""
    metas = svc.versions(name)
    numbers = [meta["version"] for meta in metas]
    if version is not None and version not in numbers:
        raise ModelNotFound(name, version)
    meta = metas[-1] if version is None else metas[numbers.index(version)]
    if meta.get("corrupt"):
        raise CorruptModel(f"model {name!r} version {meta['version']} is corrupt: "
                           f"{meta['corrupt']}", reason=meta["corrupt"])
    datatype = DATATYPES.get(meta["training"]["dtype"], "FP64")
    return {"name": name, "versions": [str(v) for v in numbers], "platform": PLATFORM,
            "inputs": [{"name": tensors.INPUT, "datatype": datatype, "shape": [-1, 2]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                        {"name": "probability", "datatype": datatype, "shape": [-1]}]}


def model_ready(svc, name, version=None):
    """Return {"name", "ready": True} once the version (None: latest) loads and checks."""
    svc.loaded_version(name, version)
    return {"name": name, "ready": True}


def infer(svc, name, version, body, header_length):
    """Return (answer body, its JSON header length or None) of an inference request body."""
    inference = tensors.decode(body, header_length, svc.settings.max_predict_points)
    served, scores, labels = svc.predict_array(name, version, inference.x)
    return tensors.encode(name, served, inference, scores, labels)
