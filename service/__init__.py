"""nnserve: train tiny NumPy networks and serve their predictions over HTTP."""


def create_app(settings=None, service=None):
    """Return the Flask app (gunicorn runs 'service:create_app()')."""
    from .http.app import create_app as _create_app

    return _create_app(settings, service)
