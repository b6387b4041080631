"""A sweep's grid: dotted paths into a training request, every combination a trial, each
checked by the training schema and the trainer before any work; and the best of them."""

import copy
import itertools
import json
import math
import typing

from pydantic import BaseModel, ValidationError

from .. import trainer
from ..errors import InvalidInput, ServiceError
from ..schemas import DATA_SPECS, TrainingRequest

# metric: (the loss that breaks its ties, whether higher is better)
# JSON bytes of one grid value: a trial's parameters are kept in its state, the sweep's
# answers and its version's meta, so a 20,000-point data set swept over 256 seeds made a
# 112 MB answer of each (546 MB of versions on disk)
MAX_GRID_VALUE_BYTES = 4096
METRICS = {"validation_accuracy": ("validation_loss", True), "accuracy": ("loss", True),
           "validation_loss": ("validation_loss", False), "loss": ("loss", False)}


def expand(grid):
    """Return every combination of the grid as {path: value}, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def trial_body(model, base, parameters):
    """Return the training request body of one trial: base with each dotted path set."""
    body = copy.deepcopy(base)
    for path, value in parameters.items():
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidInput(f"grid key {path!r}: base has no object at {part!r}",
                                   ("grid", path))
        node[last] = copy.deepcopy(value)
    return {**body, "model": model}


def trial_requests(req, validate):
    """Return validate(body, parameters) of every trial of a SweepRequest, in grid order: a
    TrainingRequest of the trial's body. Trials whose data set the grid sets alike (all of
    them, when no grid key is under `dataset`) share the data set their first validated: a
    base of 100,000 points is parsed once, not once a trial, and held once."""
    keys = [path for path in req.grid if path.split(".")[0] == "dataset"]
    bare = {k: v for k, v in req.base.items() if k != "dataset"}
    shared = {}  # the trial's values of keys (JSON) -> the data set its first trial validated
    trials = []
    for parameters in expand(req.grid):
        key = json.dumps([parameters[path] for path in keys])
        if key in shared or (not keys and "dataset" in req.base):
            body = trial_body(req.model, bare, {p: v for p, v in parameters.items()
                                                if p not in keys})
            body["dataset"] = shared.get(key, req.base.get("dataset"))  # no copy of it
        else:  # the first of its data set: set into a copy of the base's
            body = trial_body(req.model, req.base, parameters)
        trials.append(validate(body, parameters))
        shared.setdefault(key, trials[-1].dataset)
    return trials


def check_sweep(req, settings):
    """Return the TrainingRequest of every trial of a SweepRequest, each refused as a training
    would be (422 naming the grid key, or the base's field), and the whole within limits."""
    if "model" in req.base:
        raise InvalidInput("base has no model: the sweep's model names every trial",
                           ("base", "model"))
    for path in req.grid:
        if path == "model" or not _is_field(path.split(".")):
            raise InvalidInput(f"grid key {path!r} is not a field of a training request",
                               ("grid", path))
    for path in req.grid:  # "network" and "network.hidden" would each set the other's value
        inner = next((p for p in req.grid if p.startswith(path + ".")), None)
        if inner is not None:
            raise InvalidInput(f"grid key {path!r} overlaps grid key {inner!r}: sweep the "
                               "one or the other", ("grid", path))
    for path, values in req.grid.items():  # each trial's parameters carry its values
        size = max(len(json.dumps(value)) for value in values)
        if size > MAX_GRID_VALUE_BYTES:
            raise InvalidInput(f"a value of grid key {path!r} is {size} bytes of JSON, over "
                               f"the limit of {MAX_GRID_VALUE_BYTES}: put a data set of "
                               "points in base", ("grid", path))
    count = math.prod(len(values) for values in req.grid.values())
    trainer.check_limit("max_sweep_trials", count, settings.max_sweep_trials, ("grid",))
    limits = {"max_train_points": settings.max_train_points}
    # (id(a data set), validation split) -> the data set, once checked: a data set shared by
    # trials is checked once, and only the spec is kept (keeping each one built held 256
    # data sets of 100,000 points, 600 MB, for a 1.5 KB request)
    checked = {}

    def check_data(dataset, validation_split):
        key = (id(dataset), validation_split)
        if key not in checked:
            trainer.check_data_of(dataset, validation_split)
            checked[key] = dataset  # keeps its id from being given to another

    requests = trial_requests(req, lambda body, parameters: _checked(
        body, parameters, settings, limits, check_data))
    if req.metric.startswith("validation") and not all(
            r.training.validation_split for r in requests):
        raise InvalidInput(f"metric {req.metric!r} needs a training.validation_split above 0 "
                           "in every trial", ("metric",))
    work = sum(trainer.request_work(r) for r in requests)  # the limit is the sweep's, in all
    trainer.check_limit("max_work", work, settings.max_work, ("grid",))
    return requests


def _checked(body, parameters, settings, limits, check_data):
    """Return one trial's TrainingRequest, checked as POST /v1/trainings checks it."""
    try:
        trial = TrainingRequest.model_validate(body, context=limits)
        trainer.check_request(trial, settings, check_data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _named(InvalidInput(error["msg"]), error["loc"], parameters, body) from None
    except ServiceError as exc:
        errors = exc.extra.get("errors") or [{"loc": [], "msg": exc.detail}]
        raise _named(exc, errors[0]["loc"], parameters, body) from None
    return trial


def _named(exc, loc, parameters, body):
    """Return exc with its field named as the sweep's: the grid key it came from, or base's."""
    loc = [part for i, part in enumerate(loc)  # a data set's kind tag is no part of the path
           if not (i == 1 and loc[0] == "dataset" and part == _kind(body))]
    key = next((p for p in parameters if loc[:len(p.split("."))] == p.split(".")), None)
    tag = ".".join(map(str, [*loc, "kind"]))
    if key is None and loc and tag in parameters:
        key = tag  # a data set refused where it sits: its swept kind (the union's tag)
    if key is None and not loc and parameters:
        key = next(iter(parameters))  # a rule across fields: name the first swept one
    field = ["grid", key] if key else ["base", *loc]
    shown = f"grid {key!r} value {parameters[key]!r:.60}: " if key else "base: "
    exc.detail = shown + exc.detail
    exc.args = (exc.detail,)
    exc.extra["errors"] = [{"loc": field, "msg": exc.extra.get("errors", [{}])[0].get(
        "msg", exc.detail)}]
    return exc


def _kind(body):
    dataset = body.get("dataset")
    return dataset.get("kind") if isinstance(dataset, dict) else None


def _is_field(parts, models=(TrainingRequest,)):
    """Return whether the dotted path parts name a field of the training request's models."""
    if not parts:
        return True
    for model in models:
        field = model.model_fields.get(parts[0])
        if field is not None and (
                len(parts) == 1 or _is_field(parts[1:], _models(field.annotation))):
            return True
    return False


def _models(annotation):
    """Return the pydantic models an annotation may hold (a union's members too)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (annotation,)
    found = tuple(m for arg in typing.get_args(annotation) for m in _models(arg))
    return found or (tuple(DATA_SPECS.values()) if annotation is None else ())


def best_trial(trials, metric):
    """Return the index of the best succeeded trial by metric, ties broken by its loss (then
    by order), or None when none succeeded with the metric."""
    ranked = ranked_trials(trials, metric)
    return ranked[0] if ranked else None


def ranked_trials(trials, metric):
    """Return the indices of the succeeded trials with the metric, best first."""
    tie, higher = METRICS[metric]
    keys = [((-1 if higher else 1) * t["metrics"][metric], t["metrics"].get(tie) or 0.0, i)
            for i, t in enumerate(trials)
            if t["status"] == "succeeded" and t["metrics"].get(metric) is not None]
    return [i for *_, i in sorted(keys)]
