"""Model stores: the interface, the file store and its memory, and the file format."""

from .base import ModelStore
from .disk import map_os_error
from .files import FileStore
from .memory import RECHECK_S, SETTLED_NS
from .npzfile import MAX_POINTS, weights_sha256

__all__ = ["MAX_POINTS", "RECHECK_S", "SETTLED_NS", "FileStore", "ModelStore", "map_os_error",
           "weights_sha256"]
