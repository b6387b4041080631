"""Request models: what the API accepts, refused with a 422 naming the field otherwise.

Defaults come from the network's own TrainingConfig and Architecture, so the
API and the library cannot drift apart. Names picked by string are Literal
types of the tables that define them: a typo is a 422, not a crash in the
middle of training.
"""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..errors import LimitExceeded
from ..jobs import STATUSES
from ..names import MAX_VERSION, NAME_PATTERN
from ..nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..nn.config import MAX_VALIDATION_SPLIT, MONITORS
from ..nn.datasets import MAX_COORDINATE, xor
from ..nn.losses import LOSSES
from ..nn.network import Architecture
from ..nn.optimizers import OPTIMIZERS
from ..nn.training import DTYPES, TrainingConfig

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="Model name")]
# A body's numbers and flags are JSON's own: pydantic's lax mode would take true for 1,
# "0.5" for 0.5 and "yes" for true (an int field still refuses 5.0, a float takes 5).
# Query models stay lax: every query value arrives as a string.
Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True)]
Bool = Annotated[bool, Field(strict=True)]
Coordinate = Annotated[Float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
Point = tuple[Coordinate, Coordinate]
# Each choice picked by string is its table's keys, in the table's order.
Activation = Literal[tuple(ACTIVATIONS)]
OutputActivation = Literal[OUTPUT_ACTIVATIONS]
Optimizer = Literal[tuple(OPTIMIZERS)]
Loss = Literal[tuple(LOSSES)]
Dtype = Literal[tuple(DTYPES)]
Monitor = Literal[MONITORS]
JobStatus = Literal[STATUSES]
XOR_POINTS = len(xor()[1])
_DEFAULT_ARCH = Architecture()
_DEFAULTS = TrainingConfig()


class Strict(BaseModel):
    """Base of every request model: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _check_count(points, info: ValidationInfo, limit_name, field):
    """Refuse a list longer than the configured limit before validating its items.

    LimitExceeded is not a ValueError: it leaves validation as it is, the same problem
    as every other limit's."""
    limit = (info.context or {}).get(limit_name)
    if limit is not None and isinstance(points, list) and len(points) > limit:
        raise LimitExceeded(limit_name, len(points), limit, field)
    return points


class _Data(Strict):
    """A data set spec; size is the number of points it makes (trainer.check_request holds
    it to max_train_points)."""

    @property
    def size(self):
        return self.n


class LinearData(_Data):
    kind: Literal["linear"]
    n: Int = Field(100, ge=2)
    seed: Int = Field(0, ge=0, le=2**32 - 1)


class XorData(_Data):
    kind: Literal["xor"]
    size: ClassVar[int] = XOR_POINTS


class CircleData(_Data):
    kind: Literal["circle"]
    n: Int = Field(200, ge=2)
    noise: Float = Field(0.05, ge=0, le=1)
    seed: Int = Field(0, ge=0, le=2**32 - 1)


class SpiralData(CircleData):
    kind: Literal["spiral"]


class PointsData(_Data):
    kind: Literal["points"]
    points: list[Point] = Field(min_length=2)
    labels: list[Annotated[Int, Field(ge=0, le=1)]] = Field(min_length=2)

    @property
    def size(self):
        return len(self.points)

    @field_validator("points", mode="before")
    @classmethod
    def _not_too_many(cls, v, info: ValidationInfo):
        """A list over max_train_points is refused before its items are validated (a
        guard on the cost of validation; the limit itself is trainer.check_request's)."""
        return _check_count(v, info, "max_train_points", ("dataset", "points"))

    @model_validator(mode="after")
    def _labels_match_points(self):
        if len(self.labels) != len(self.points):
            raise ValueError(f"{len(self.labels)} labels for {len(self.points)} points")
        return self


DATA_SPECS = {"linear": LinearData, "xor": XorData, "circle": CircleData, "spiral": SpiralData,
              "points": PointsData}  # by kind: DATASETS' kinds, and the user's own points
Dataset = Annotated[
    LinearData | XorData | CircleData | SpiralData | PointsData, Field(discriminator="kind")
]


class NetworkSpec(Strict):
    hidden: list[Annotated[Int, Field(ge=1)]] = Field(
        default_factory=lambda: list(_DEFAULT_ARCH.layers[1:-1])
    )
    activation: Activation = _DEFAULT_ARCH.activation
    output_activation: OutputActivation = _DEFAULT_ARCH.output_activation
    bias: Bool = _DEFAULT_ARCH.bias
    seed: Int = Field(_DEFAULTS.seed, ge=0, le=2**32 - 1)


class TrainingSpec(Strict):
    epochs: Int = Field(_DEFAULTS.epochs, ge=1)
    learning_rate: Float = Field(_DEFAULTS.learning_rate, gt=0, le=1e3)
    optimizer: Optimizer = _DEFAULTS.optimizer
    momentum: Float = Field(_DEFAULTS.momentum, ge=0, lt=1)
    beta1: Float = Field(_DEFAULTS.beta1, ge=0, lt=1)
    beta2: Float = Field(_DEFAULTS.beta2, ge=0, lt=1)
    eps: Float = Field(_DEFAULTS.eps, gt=0, le=1)
    batch_size: Int | None = Field(_DEFAULTS.batch_size, ge=1)
    loss: Loss = _DEFAULTS.loss
    target_accuracy: Float | None = Field(_DEFAULTS.target_accuracy, gt=0, le=1)
    tolerance: Float | None = Field(_DEFAULTS.tolerance, gt=0)
    patience: Int | None = Field(_DEFAULTS.patience, ge=1)
    validation_split: Float = Field(_DEFAULTS.validation_split, ge=0, le=MAX_VALIDATION_SPLIT)
    monitor: Monitor = _DEFAULTS.monitor
    restore_best_weights: Bool = _DEFAULTS.restore_best_weights
    l2: Float = Field(_DEFAULTS.l2, ge=0, le=1e3)
    dtype: Dtype = _DEFAULTS.dtype
    starts: Int = Field(_DEFAULTS.starts, ge=1, le=16)
    probe_epochs: Int = Field(_DEFAULTS.probe_epochs, ge=1)

    @field_validator("monitor")
    @classmethod
    def _monitor_needs_a_split(cls, v, info: ValidationInfo):
        if v == "validation_loss" and not info.data.get("validation_split"):
            raise ValueError("monitor 'validation_loss' needs a validation_split above 0")
        return v


class TrainingRequest(Strict):
    """POST /v1/trainings: only model and dataset are required."""

    model: Name
    dataset: Dataset
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec, validate_default=True)

    @field_validator("training")
    @classmethod
    def _bce_needs_sigmoid(cls, training, info: ValidationInfo):
        # a field's validator, so that the answer names training (a model's named nothing)
        network = info.data.get("network")
        if network is not None and training.loss == "bce" \
                and network.output_activation != "sigmoid":
            raise ValueError("loss 'bce' needs output_activation 'sigmoid'; use loss 'mse'")
        return training


_NUMBER = {"type": "number", "minimum": -MAX_COORDINATE, "maximum": MAX_COORDINATE}
_PAIR = {"type": "array", "prefixItems": [_NUMBER, _NUMBER],
         "minItems": 2, "maxItems": 2}
_XY = {"type": "object", "properties": {"x1": _NUMBER, "x2": _NUMBER},
       "required": ["x1", "x2"], "additionalProperties": False}
PointList = Annotated[
    list[Point],
    WithJsonSchema({"type": "array", "minItems": 1, "items": {"anyOf": [_PAIR, _XY]}}),
]


class PredictRequest(Strict):
    """{"points": [[x1, x2], ...]}, {"points": [{"x1":.., "x2":..}, ...]} or {"x1":.., "x2":..}."""

    points: PointList = Field(min_length=1)
    threshold: Float = 0.5

    @model_validator(mode="before")
    @classmethod
    def _single_point(cls, data: Any):
        if isinstance(data, dict) and "points" not in data and ("x1" in data or "x2" in data):
            rest = {k: v for k, v in data.items() if k not in ("x1", "x2")}
            # a coordinate missing stays missing: _pair names it (None read "not a number")
            return {**rest, "points": [{k: data[k] for k in ("x1", "x2") if k in data}]}
        return data

    @field_validator("points", mode="before")
    @classmethod
    def _pairs(cls, v, info: ValidationInfo):
        v = _check_count(v, info, "max_predict_points", ("points",))
        return [_pair(p) if isinstance(p, dict) else p for p in v] if isinstance(v, list) else v


def _pair(point):
    """Return [x1, x2] of a {"x1": .., "x2": ..} point."""
    if set(point) != {"x1", "x2"}:
        raise ValueError(f"a point object has exactly the keys x1 and x2, got {sorted(point)}")
    return [point["x1"], point["x2"]]


class SweepRequest(Strict):
    """POST /v1/sweeps: every combination of the grid's values, set into base, is a trial."""

    model: Name
    base: dict[str, Any] = Field(description="A training request without its model")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        min_length=1, description="Dotted paths into a training request, each with its values")
    metric: Literal["validation_accuracy", "accuracy", "validation_loss", "loss"] = "accuracy"


class NoQuery(Strict):
    """The query of an operation that takes no parameter: any is refused."""


class SweepListQuery(Strict):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=2**63 - 1)


class AliasRequest(Strict):
    """PUT /v1/models/{name}/aliases/{alias}: the version the alias names."""

    version: Int = Field(ge=1, le=MAX_VERSION)


# How jobs are answered where many are, or where a terminal shows one: "summary" (the
# request with its data set's points counted, no history) or "full" (as GET of one job).
JobView = Literal["summary", "full"]


class WaitQuery(Strict):
    wait: float = Field(0, ge=0)
    view: JobView = "summary"


class JobQuery(Strict):
    """GET of one job: the whole job unless view=summary (as lists show it)."""

    view: JobView = "full"


class ModelPageQuery(Strict):
    """A page of the dashboard's models fragment, by name."""

    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=2**63 - 1)


class JobListQuery(Strict):
    status: JobStatus | None = None
    model: Name | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=2**63 - 1)  # SQLite's largest integer
    view: JobView = "summary"


FIGURE_WIDTH, FIGURE_HEIGHT = {"ge": 300, "le": 3000}, {"ge": 200, "le": 2000}  # every figure's


class PlotQuery(Strict):
    width: int = Field(1200, **FIGURE_WIDTH)
    height: int = Field(400, **FIGURE_HEIGHT)


class PointsQuery(Strict):
    limit: int = Field(1000, ge=1, le=10_000)  # the store keeps at most 10,000 a version


class BoundaryQuery(Strict):
    """A job's decision boundary: one square panel, so a narrower default."""

    width: int = Field(500, **FIGURE_WIDTH)
    height: int = Field(400, **FIGURE_HEIGHT)
