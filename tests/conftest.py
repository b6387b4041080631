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
    end, also when the run is interrupted (SIGTERM becomes SystemExit, so finally runs)."""
    import signal

    from tests.pgkit import Cluster

    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def pg_database(pg_cluster):
    """Return a service.pg.Database on a fresh, migrated database of the session's cluster;
    its pool is closed after the test."""
    from service.pg import Database

    number = next(_DATABASES)
    db = Database(pg_cluster.new_database(f"t_{os.getpid()}_{number}"), max_size=4)
    db.migrate()
    yield db
    db.close()
