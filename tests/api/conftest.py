"""Fixtures of the API tests."""

import pytest

from service import create_app
from service.settings import Settings

from .helpers import FAST, train


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """One client whose store holds model 'm', for the tests that only send refused requests."""
    app = create_app(Settings(store_dir=tmp_path_factory.mktemp("errors") / "store"))
    client = app.test_client()
    job = train(client, "m", training=FAST)
    assert job.status == "succeeded", job.error
    yield client
    app.extensions["nnserve"].stop()
