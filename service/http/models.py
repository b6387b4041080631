"""/v1/models: list, inspect, delete, export, import and predict."""

from flask import Blueprint, Response, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from ..schemas import (
    Alias,
    AliasRequest,
    ModelDetail,
    ModelList,
    PlotQuery,
    PointsQuery,
    PredictRequest,
    PredictResponse,
    TrainingPoints,
    VersionMeta,
)
from ..schemas import bulk as predictions
from .api import (
    json_body,
    json_response,
    operation,
    parse_body,
    parse_query,
    read_body,
    service,
)

bp = Blueprint("models", __name__, url_prefix="/v1/models")
NPZ = "application/octet-stream"
PNG = "image/png"


@bp.get("")
@operation("List models", response=ModelList)
def index():
    """Every model name with its latest version and that version's metrics."""
    return json_response({"models": service().list_models()})


@bp.get("/<name>")
@operation("Get a model's versions", response=ModelDetail, errors=(404, 422))
def show(name):
    """Each version's metadata (with its aliases), oldest first; a damaged version is
    reported corrupt; and every alias with its version."""
    versions, aliases = service().model_detail(name)
    return json_response({"name": name, "versions": versions, "aliases": aliases})


@bp.delete("/<name>")
@operation("Delete a model", access="write", status=204, response=None, errors=(404, 422))
def delete(name):
    """Delete every version of the model."""
    service().delete(name)
    return "", 204


@bp.get("/<name>/versions/<int:version>")
@operation("Get a version's metadata", response=VersionMeta, errors=(404, 409, 422))
def show_version(name, version):
    """One version's metadata, read without loading its weights."""
    return json_response(service().version(name, version))


@bp.delete("/<name>/versions/<int:version>")
@operation("Delete a version", access="write", status=204, response=None, errors=(404, 422))
def delete_version(name, version):
    """Delete one version."""
    service().delete(name, version)
    return "", 204


@bp.get("/<name>/versions/<int:version>/npz")
@operation("Download a version's .npz", response=None, content=NPZ, errors=(404, 409, 422))
def export(name, version):
    """The .npz file as stored, checked before it leaves."""
    data, filename = service().export(name, version)
    return data, 200, {"Content-Type": NPZ,
                       "Content-Disposition": f'attachment; filename="{filename}"'}


@bp.post("/<name>/versions")
@operation("Upload a .npz as a new version", access="write", response=VersionMeta, status=201,
           body="npz", errors=(400, 413, 415, 422, 503, 507))
def upload(name):
    """The body is the .npz itself (application/octet-stream) or multipart with a 'file' part."""
    meta = service().upload(name, _uploaded_bytes())
    location = f"/v1/models/{name}/versions/{meta['version']}"
    return json_response(meta, 201, {"Location": location})


@bp.post("/<name>/predict")
@operation("Classify points with the latest version", body=PredictRequest,
           response=PredictResponse, errors=(400, 404, 409, 413, 415, 422))
def predict(name):
    """Labels and probabilities for the posted points, in the order posted."""
    return _predict(name, None)


@bp.post("/<name>/versions/<int:version>/predict")
@operation("Classify points with a pinned version", body=PredictRequest,
           response=PredictResponse, errors=(400, 404, 409, 413, 415, 422))
def predict_version(name, version):
    """Labels and probabilities for the posted points, in the order posted."""
    return _predict(name, version)


@bp.put("/<name>/aliases/<alias>")
@operation("Point an alias at a version", access="write", body=AliasRequest, response=Alias,
           errors=(400, 404, 415, 422, 503, 507))
def set_alias(name, alias):
    """The alias names that version from now on (moved if it named another); 404 naming the
    version when the model has no such version."""
    req = parse_body(AliasRequest)
    return json_response(service().set_alias(name, alias, req.version))


@bp.delete("/<name>/aliases/<alias>")
@operation("Delete an alias", access="write", status=204, response=None,
           errors=(404, 422, 503))
def delete_alias(name, alias):
    """Remove the alias; the version it named stays."""
    service().delete_alias(name, alias)
    return "", 204


@bp.post("/<name>/aliases/<alias>/predict")
@operation("Classify points with the version an alias names", body=PredictRequest,
           response=PredictResponse, errors=(400, 404, 409, 413, 415, 422))
def predict_alias(name, alias):
    """Labels and probabilities for the posted points, in the order posted; the answer names
    the version the alias pointed at."""
    return _predict(name, service().alias_version(name, alias))


@bp.get("/<name>/plot.png")
@operation("Plot the latest version", query=PlotQuery, response=None, content=PNG,
           errors=(404, 409, 422))
def plot(name):
    """One PNG: ground truth vs predictions, decision boundary, learning curve."""
    return _plot(name, None)


@bp.get("/<name>/versions/<int:version>/plot.png")
@operation("Plot a pinned version", query=PlotQuery, response=None, content=PNG,
           errors=(404, 409, 422))
def plot_version(name, version):
    """One PNG: ground truth vs predictions, decision boundary, learning curve."""
    return _plot(name, version)


@bp.get("/<name>/units.png")
@operation("Draw the latest version's units", query=PlotQuery, response=None, content=PNG,
           errors=(404, 409, 422))
def units(name):
    """One PNG: each hidden unit's activation over the data's range, layer by layer, and the
    output's, with the weights between them as lines (blue positive, red negative)."""
    return _plot(name, None, "units_figure")


@bp.get("/<name>/versions/<int:version>/units.png")
@operation("Draw a pinned version's units", query=PlotQuery, response=None, content=PNG,
           errors=(404, 409, 422))
def units_version(name, version):
    """One PNG: each hidden unit's activation over the data's range, layer by layer, and the
    output's, with the weights between them as lines (blue positive, red negative)."""
    return _plot(name, version, "units_figure")


@bp.get("/<name>/points")
@operation("Get the latest version's training points", query=PointsQuery,
           response=TrainingPoints, errors=(404, 409, 422))
def points(name):
    """The points and labels stored with the latest version (the dashboard draws them on
    its canvas), evenly thinned to at most ?limit= (1000; up to 10,000)."""
    return _points(name, None)


@bp.get("/<name>/versions/<int:version>/points")
@operation("Get a pinned version's training points", query=PointsQuery,
           response=TrainingPoints, errors=(404, 409, 422))
def points_version(name, version):
    """The points and labels stored with a version, evenly thinned to at most ?limit=."""
    return _points(name, version)


def _points(name, version):
    query = parse_query(PointsQuery)
    return json_response(service().training_points(name, version, query.limit))


def _plot(name, version, figure="model_figure"):
    query = parse_query(PlotQuery)
    png = getattr(service(), figure)(name, version, query.width, query.height)
    return png, 200, {"Content-Type": PNG}


def _predict(name, version):
    raw = json_body()
    bulk = predictions.read(raw, service().limits)  # a large body of valid pairs, or None
    if bulk is None:
        req = parse_body(PredictRequest, raw)
        version, scores, labels = service().predict(name, version, req.points, req.threshold)
    else:
        version, scores, labels = service().predict_array(name, version, *bulk, ("points",))
    return Response(predictions.write(name, version, scores, labels),
                    content_type="application/json")


def _uploaded_bytes():
    if request.mimetype == "multipart/form-data":
        parts = request.files.getlist("file")
        fields = request.form.getlist("file")  # a part without a filename is read as text
        if len(parts) + len(fields) > 1:  # one was kept, silently: which one is unknown
            raise BadRequest(f"multipart upload has {len(parts) + len(fields)} 'file' parts: "
                             "send one version at a time")
        if fields:
            raise BadRequest("the 'file' part has no filename, so it is read as text: send "
                             "it as a file (curl -F file=@model.npz)")
        if not parts:
            raise BadRequest("multipart upload needs a 'file' part holding the .npz")
        return parts[0].read()
    if request.mimetype not in (NPZ, "application/x-npz", "application/zip"):
        raise UnsupportedMediaType("send the .npz as application/octet-stream or multipart")
    return read_body()
