"""The Open Inference Protocol (KServe V2): its objects, its tensor codec, its operations."""

from .protocol import (
    NotReady,
    infer,
    model_metadata,
    model_ready,
    server_metadata,
    server_ready,
)
from .schemas import ProtocolError
from .tensors import HEADER_LENGTH, BadTensor

__all__ = ["HEADER_LENGTH", "BadTensor", "NotReady", "ProtocolError", "infer", "model_metadata",
           "model_ready", "server_metadata", "server_ready"]
