"""The one place that picks the model store and the job backend from the settings."""

from .jobs import SqliteJobs
from .store import FileStore


def build_store(settings):
    """Return the model store of settings: the file store at NNSERVE_STORE_DIR."""
    return FileStore(settings.store_dir, settings.cache_size)


def build_jobs(settings):
    """Return the job backend of settings: the SQLite file at NNSERVE_JOBS_DB."""
    return SqliteJobs(settings.jobs_path)


def build(settings):
    """Return (store, jobs): the backends a Service of settings runs on."""
    return build_store(settings), build_jobs(settings)


def prepare(settings):
    """Create what the backends need before workers start (the job database) and fail the
    jobs a previous run left running; called once, by gunicorn's master."""
    build_jobs(settings).recover()
