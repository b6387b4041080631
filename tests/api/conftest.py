"""Fixtures of the API tests."""

import pytest

from service import create_app
from service.settings import Settings

from .helpers import FAST, train


@pytest.fixture(scope="package")
def shared(tmp_path_factory):
    """One client whose store holds model 'm', for the tests that only send refused requests.

    Stopped once tests/api is done: its runner thread polls SQLite, and a later test that
    forks while that thread holds SQLite's lock has a child hang in sqlite3.connect."""
    app = create_app(Settings(store_dir=tmp_path_factory.mktemp("errors") / "store"))
    client = app.test_client()
    job = train(client, "m", training=FAST)
    assert job.status == "succeeded", job.error
    yield client
    app.extensions["nnserve"].stop()
