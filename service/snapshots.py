"""A running job's latest weights, small enough to be written with each of its reports.

A snapshot is {"epoch": e, "arch": Architecture.to_dict(), "theta": base64 of the weights
as little-endian float32} in network.py's flat layout of a stack of one, or with "dtype":
"<f8" and float64 weights when one is beyond float32's range (a fit at a huge learning
rate can succeed with such weights, and they must draw) and at most MAX_PARAMS // 2 of
them (a larger network then has no snapshot of those weights): it names its own
architecture, so drawing it reads nothing else of the job. A network of more than
MAX_PARAMS weights has none, which keeps a snapshot under 22 KB of JSON (within
jobs.records.MAX_SNAPSHOT_CHARS; what it costs per report: benchmarks/RESULTS.md,
"Snapshots").
"""

import base64
import binascii

import numpy as np

from .nn.model import Model
from .nn.network import Architecture, count_params, params_from_theta
from .nn.training import TrainingConfig

MAX_PARAMS = 4096  # 2-32-32-1 has 1185, 8 hidden layers of 20 units 3001
F4_MAX = float(np.finfo(np.float32).max)
DTYPES = ("<f4", "<f8")


def snapshot(arch, theta, epoch):
    """Return the snapshot of one network's flat weights at epoch; None past MAX_PARAMS, or
    past half of it for weights beyond float32's range."""
    if theta.size > MAX_PARAMS:
        return None
    snap = {"epoch": int(epoch), "arch": arch.to_dict()}
    if not np.abs(theta).max(initial=0.0) > F4_MAX:  # NaN too: float32 says it as well
        packed = np.asarray(theta, "<f4").tobytes()
    elif theta.size <= MAX_PARAMS // 2:
        packed, snap["dtype"] = np.asarray(theta, "<f8").tobytes(), "<f8"
    else:
        return None
    return {**snap, "theta": base64.b64encode(packed).decode("ascii")}


def model_of(snap):
    """Return the Model (float64) a snapshot holds; ValueError if it is not one (a record
    written by something else)."""
    try:
        arch = Architecture(**snap["arch"])
        raw = base64.b64decode(snap["theta"], validate=True)
        dtype = np.dtype(DTYPES[DTYPES.index(snap.get("dtype", "<f4"))])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not a snapshot: {exc}") from None
    if len(raw) != dtype.itemsize * count_params(arch):
        raise ValueError(f"the snapshot holds {len(raw) // dtype.itemsize} weights, not "
                         f"{count_params(arch)}")
    theta = np.frombuffer(raw, dtype).astype(np.float64)
    if not np.isfinite(theta).all():
        raise ValueError("the snapshot's weights are not all finite")
    return Model(arch, params_from_theta(arch, theta), TrainingConfig())
