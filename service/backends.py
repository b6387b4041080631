"""The one place that picks the model store and the job backend from the settings.

Imports are made where a backend is built: gunicorn's master calls prepare() before it
forks, and must not load NumPy and the store for it.
"""

import os
from functools import partial


def build_store(settings, db=None):
    """Return the model store of settings: PostgreSQL at NNSERVE_DATABASE_URL (on db, the
    process's Database of it, when given) when it is set, else the file store at
    NNSERVE_STORE_DIR."""
    if settings.database_url is not None:
        from .store.postgres import PgStore

        return PgStore(db or database(settings), settings.cache_size)
    from .store import FileStore

    return FileStore(settings.store_dir, settings.cache_size)


def build_jobs(settings, db=None, store=None):
    """Return the job backend of settings: PostgreSQL at NNSERVE_DATABASE_URL (on db when
    given) when it is set, else the SQLite file at NNSERVE_JOBS_DB, which looks in store
    for the version of a job lost while saving (without store, as gunicorn's master, it
    leaves such a job to a process that has one)."""
    if settings.database_url is not None:
        from .jobs.postgres import PgJobs

        return PgJobs(db or database(settings), lease_s=settings.job_lease_s)
    from .jobs.sqlite import LEAVE_SAVING, SqliteJobs

    saved = LEAVE_SAVING
    if store is not None:
        from .core import saved_result

        saved = partial(saved_result, store)
    return SqliteJobs(settings.jobs_path, stale_s=settings.job_lease_s, saved=saved)


# (pid, URL) set by prepare() in gunicorn's master once that database was checked and
# migrated: its workers, forked from it, open their pools on it without checking again, so
# that a worker booting while the database is away (a respawn during a failover) waits
# for it as the others do, instead of failing to boot, which makes gunicorn halt the
# whole server. The process that prepared it, or another database, is checked as ever.
_PREPARED = None


def database(settings):
    """Return the Database of NNSERVE_DATABASE_URL, its schema migrated; StoreUnavailable
    with one line naming the setting (never the password) when it cannot be used (not
    checked again in a worker of a master that prepared it)."""
    from .pg import Database

    url = settings.database_url.get_secret_value()
    db = Database(url)
    if _PREPARED is None or _PREPARED[1] != url or _PREPARED[0] == os.getpid():
        db.check()
    return db


def build(settings):
    """Return (store, jobs): the backends a Service of settings runs on (one Database for
    both in PostgreSQL mode: one pool and one listening connection per process)."""
    db = database(settings) if settings.database_url is not None else None
    store = build_store(settings, db)
    return store, build_jobs(settings, db, store)


def prepare(settings):
    """Create what the backends need before workers start (the job database) and fail the
    jobs a previous run left running; called once, by gunicorn's master. A database that
    cannot be used stops start-up with one line (SystemExit)."""
    from .errors import StoreUnavailable

    global _PREPARED
    try:
        jobs = build_jobs(settings)
    except StoreUnavailable as exc:
        raise SystemExit(str(exc)) from None
    jobs.recover()
    if hasattr(jobs, "db"):
        jobs.db.close()  # the workers open pools of their own
        _PREPARED = (os.getpid(), settings.database_url.get_secret_value())
