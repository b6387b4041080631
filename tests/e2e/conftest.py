"""End-to-end fixtures: real gunicorn with several workers on a temporary store."""

import pytest

from .server import Server


@pytest.fixture
def server(tmp_path):
    """A running 3-worker nnserve on a free loopback port; stopped after the test."""
    srv = Server(tmp_path / "store", workers=3).start()
    yield srv
    srv.stop()


@pytest.fixture
def start_server(tmp_path):
    """Return a factory starting servers with custom settings; all stopped after the test."""
    servers = []

    def start(store=None, **kwargs):
        srv = Server(store or tmp_path / "store", **kwargs).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
