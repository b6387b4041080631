"""All configuration, read once from NNSERVE_* environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "NNSERVE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """NNSERVE_* values that cannot be used: one line naming each variable and what it must
    be (never a secret's value)."""


class Settings(BaseSettings):
    """nnserve's settings; the README's configuration table lists the same fields."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, use_attribute_docstrings=True
    )

    store_dir: Path = Path("model_store")
    """Directory of the model store (one folder per model name, one .npz per version)."""
    jobs_db: Path | None = None
    """SQLite file of the training jobs; default: .jobs.sqlite3 inside the store directory."""
    database_url: SecretStr | None = None
    """PostgreSQL URL of the jobs and models shared by several hosts; unset: SQLite and files."""
    cache_size: int = Field(32, ge=1)
    """Loaded models kept in each worker's in-memory LRU cache."""
    max_predict_points: int = Field(100_000, ge=1)
    """Points in one prediction request."""
    max_train_points: int = Field(100_000, ge=2)
    """Points in one training data set."""
    max_epochs: int = Field(100_000, ge=1)
    """Epochs of one training job."""
    max_work: float = Field(3e10, gt=0, allow_inf_nan=False)
    """Work of one training job: epochs (with every start's probes) x points x parameters."""
    max_predict_work: float = Field(1e10, gt=0, allow_inf_nan=False)
    """Work of one prediction or figure: points x parameters (a figure's points: its grid)."""
    max_sweep_trials: int = Field(256, ge=1)
    """Trials of one sweep (every combination of its grid); its work is the sum of theirs."""
    max_hidden_layers: int = Field(8, ge=1)
    """Hidden layers of a network."""
    max_hidden_units: int = Field(256, ge=1)
    """Units in one hidden layer."""
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """Size of a request body, in bytes (413 beyond)."""
    read_timeout_s: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False)
    """Seconds a client has to send a whole request, read without a thread; 408 beyond."""
    spread_connections: bool = True
    """Spread kept-alive connections evenly over a host's workers (docs/DEPLOY.md)."""
    max_running_jobs: int = Field(2, ge=1)
    """Training jobs running at once across all workers; the rest wait queued."""
    job_timeout_s: float = Field(600.0, gt=0, allow_inf_nan=False)
    """Wall-clock limit of one training job, after which it fails."""
    job_lease_s: float = Field(30.0, ge=0.5, le=3600, allow_inf_nan=False)
    """Seconds without a heartbeat before a running job is lost (PostgreSQL: then claimed again)."""
    job_retention_s: float = Field(7 * 24 * 3600.0, ge=3600, le=100 * 365 * 24 * 3600,
                                   allow_inf_nan=False)
    """How long an ended training job stays on record after it ends (1 hour to 100 years)."""
    max_wait_s: float = Field(60.0, ge=0, le=3600, allow_inf_nan=False)
    """Longest ?wait= a training request may ask for (at most an hour)."""
    max_waits: int = Field(3, ge=0, le=256)
    """?wait= requests waiting at once in each worker (each holds a thread); beyond, 202 at once."""
    max_streams: int = Field(4, ge=1, le=256)
    """Event streams open at once in each worker, each on a thread of its own; 503 beyond."""
    stream_keepalive_s: float = Field(15.0, gt=0, le=3600, allow_inf_nan=False)
    """Seconds between the keep-alive comments of an event stream while nothing changes."""
    run_jobs: bool = True
    """Whether this process runs training jobs (a worker thread per process)."""
    api_token: SecretStr | None = None
    """Bearer token of mutating endpoints; unset: no authentication; blank, unsendable: refused."""
    protect_reads: bool = False
    """Also require the token for reads and predictions."""

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token):
        """An empty token would let `Authorization: Bearer ` through: unset means no token.
        One no header can carry (a secret file's trailing newline, a space at either end,
        a control character) would lock every client out."""
        value = None if token is None else token.get_secret_value()
        if value is not None and not value.strip():
            raise ValueError("must not be empty or blank (unset it for no authentication)")
        if value is not None and (value != value.strip() or not value.isprintable()):
            raise ValueError("must not start or end with white space or hold a control "
                             "character (a header cannot carry it)")
        return token
    log_level: Literal[LOG_LEVELS] = "INFO"
    """Log level of the service's own logger: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, level):
        known = isinstance(level, str) and level.upper() in LOG_LEVELS
        return level.upper() if known else level  # refused as it was set

    @property
    def jobs_path(self):
        """Return the SQLite path of the job backend."""
        return self.jobs_db or self.store_dir / ".jobs.sqlite3"


def read_settings(**overrides):
    """Return the Settings of the NNSERVE_* variables (and overrides, named as the fields);
    SettingsError saying in one line which variable is wrong and what it must be."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError("; ".join(_explain(error) for error in exc.errors())) from None


def _explain(error):
    """Return 'NNSERVE_X='value': what it must be' for one pydantic error."""
    field = str(error["loc"][0]) if error["loc"] else "?"
    variable = f"{PREFIX}{field.upper()}"
    secret = field in Settings.model_fields and Settings.model_fields[field].annotation in (
        SecretStr, SecretStr | None)
    value = "" if secret or "input" not in error else f"={str(error['input'])[:40]!r}"
    return f"{variable}{value}: {error['msg'][:1].lower()}{error['msg'][1:]}"
