"""The one place that picks the model store and the job backend from the settings.

Imports are made where a backend is built: gunicorn's master calls prepare() before it
forks, and must not load NumPy and the store for it.
"""


def build_store(settings):
    """Return the model store of settings: the file store at NNSERVE_STORE_DIR."""
    from .store import FileStore

    return FileStore(settings.store_dir, settings.cache_size)


def build_jobs(settings):
    """Return the job backend of settings: the SQLite file at NNSERVE_JOBS_DB."""
    from .jobs.sqlite import SqliteJobs

    return SqliteJobs(settings.jobs_path)


def build(settings):
    """Return (store, jobs): the backends a Service of settings runs on."""
    return build_store(settings), build_jobs(settings)


def prepare(settings):
    """Create what the backends need before workers start (the job database) and fail the
    jobs a previous run left running; called once, by gunicorn's master."""
    build_jobs(settings).recover()
