"""Response models: what the API answers, and the source of /openapi.json's responses."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .requests import JobStatus, TrainingRequest


class Prediction(BaseModel):
    label: Literal[0, 1]
    probability: float


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]


class TrainingPoints(BaseModel):
    """The training points stored with a version (a seeded sample of a larger set), evenly
    thinned to at most limit."""

    model: str
    version: int
    points: list[tuple[float, float]]
    labels: list[Literal[0, 1]]
    stored: int  # how many the version keeps


class Progress(BaseModel):
    epoch: int
    epochs: int
    loss: float | None
    accuracy: float | None
    elapsed_s: float


class History(BaseModel):
    epoch: list[int]
    loss: list[float | None]
    accuracy: list[float | None]


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    loss: float
    accuracy: float
    validation_loss: float | None = None
    validation_accuracy: float | None = None
    epochs: int
    seconds: float


class JobResult(BaseModel):
    name: str
    version: int
    metrics: Metrics


class JobSummary(BaseModel):
    """A job as lists answer it (view=summary): the request with its data set's points and
    labels replaced by their number n, and no history."""

    id: str
    status: JobStatus
    model: str
    request: dict[str, Any]
    progress: Progress
    result: JobResult | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempt: int  # claims so far: 0 queued, 1 once run, 2 when a lost host's job was run again


class Job(JobSummary):
    """A job in full: as GET of one job (and view=full) answers it."""

    request: TrainingRequest
    history: History


class JobList(BaseModel):
    jobs: list[JobSummary | Job]
    total: int
    limit: int
    offset: int


class VersionMeta(BaseModel):
    """A version's metadata; a corrupt version has only version and corrupt."""

    model_config = ConfigDict(extra="allow")
    version: int
    corrupt: str | None = None


class ModelSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    latest: int | None
    versions: int


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelDetail(BaseModel):
    name: str
    versions: list[VersionMeta]
    aliases: dict[str, int] = Field(description="Each alias and the version it names")


class Alias(BaseModel):
    name: str
    alias: str
    version: int


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Trial(BaseModel):
    trial: int
    parameters: dict[str, Any]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    metrics: Metrics | None
    version: int | None
    error: str | None


class SweepProgress(BaseModel):
    done: int
    total: int
    elapsed_s: float


class SweepSummary(BaseModel):
    id: str
    status: JobStatus
    model: str
    metric: str
    grid: dict[str, list[Any]]
    progress: SweepProgress
    best: Trial | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class Sweep(SweepSummary):
    base: dict[str, Any]
    trials: list[Trial]


class SweepList(BaseModel):
    sweeps: list[SweepSummary]
    total: int
    limit: int
    offset: int
