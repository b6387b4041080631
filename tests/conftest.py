"""Fixtures shared by the layers: settings on a temporary store, the app, its test client."""

import itertools
import os

import pytest

from service import create_app
from service.settings import Settings


@pytest.fixture
def settings(tmp_path):
    """Settings on an empty temporary store."""
    return Settings(store_dir=tmp_path / "store")


@pytest.fixture
def app(settings):
    """The Flask app with its job runner; stopped after the test."""
    app = create_app(settings)
    yield app
    app.extensions["nnserve"].stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(tmp_path):
    """Return a factory of test clients for custom settings (each app stopped afterwards)."""
    apps = []

    def make(**overrides):
        overrides.setdefault("store_dir", tmp_path / "store")
        app = create_app(Settings(**overrides))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["nnserve"].stop()


@pytest.fixture
def xor_model(client):
    """Train the lab's XOR model 'xor-demo' through the API; return its job."""
    r = client.post("/v1/trainings?wait=30&view=full",
                    json={"model": "xor-demo", "dataset": {"kind": "xor"}})
    assert r.status_code == 201, r.json  # ended within the wait
    assert r.json["status"] == "succeeded", r.json
    return r.json


_DATABASES = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL server for the session (tests/pgkit.py), stopped by its PID at the
    end; when the run is killed (SIGTERM, SIGKILL), its watcher process stops it."""
    from tests.pgkit import Cluster

    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster):
    """Return the URL of the session's test database, migrated once (pg_database empties it
    for each test: creating a database per test costs half a second)."""
    from service.pg import Database

    url = pg_cluster.new_database(f"t_{os.getpid()}")
    db = Database(url, max_size=1)
    db.migrate()
    db.close()
    return url


@pytest.fixture
def pg_database(pg_cluster, pg_url):
    """Return a service.pg.Database on an empty, migrated database of the session's cluster
    (a new one when the shared one cannot be emptied at once: something still holds it);
    its pool and listener are closed after the test."""
    import psycopg

    from service.pg import Database

    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename NOT IN ('nnserve_schema', 'store_generation')")]
            with conn.transaction():
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
                conn.execute("UPDATE store_generation SET value = 0")
        url = pg_url
    except psycopg.errors.LockNotAvailable:
        url = pg_cluster.new_database(f"t_{os.getpid()}_{next(_DATABASES)}")
    db = Database(url, max_size=4)
    db.migrate()
    yield db
    db.close()
