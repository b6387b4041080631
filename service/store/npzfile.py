"""The model file format: one .npz written once, and read back validated in full.

A file holds the weights (W0, b0, ...), ``meta`` (JSON in a 0-d unicode array) and
the training points ``train_x: (n, 2)``, ``train_y: (n,)``. Reading refuses, never
executes: the zip's member list and inflated size are checked before anything is
read, no pickles, and every member, shape, dtype and the checksum are checked before
a model is built.
"""

import contextlib
import hashlib
import io
import json
import math
import os
import re
import time
import zipfile
import zlib

import numpy as np

from .. import jsoncodec
from ..nn.datasets import check_dataset
from ..nn.model import Model

FORMAT = 1
MEMBER_RE = re.compile(r"(meta|train_x|train_y|[Wb][0-9]{1,3})\.npy", re.ASCII)
MAX_MEMBERS = 64
MAX_UNPACKED = 64 * 2**20  # bytes once inflated: refuses zip bombs before reading them
# meta.npy once inflated (4 bytes a character): a trained model's is under 1 MB, an upload's
# history of 200,000 rows of full-precision floats (thinned when kept) about 35 MB; parsing
# one of 64 MB cost a worker 400 MB (an 84 KB upload)
MAX_META_UNPACKED = 48 * 2**20
# Values in meta's JSON (counted by its commas before it is parsed): that 200,000-row
# history has 600,000 in 3 columns, 1 million in the 5 a model with held-out points keeps;
# a 92 KB upload of 5,500 columns of 1,000 zeros (42 MB inflated) has 5.5 million, which
# cost 2 s and 250 MB to parse before its bounds refused it
MAX_META_VALUES = 2_000_000
MAX_POINTS = 10_000
SAMPLE_SEED = 0
META_TYPES = {
    "format": int, "name": str, "version": int, "created_at": str, "architecture": dict,
    "training": dict, "dataset": dict, "metrics": dict, "history": dict, "sha256": str,
    "points_stored": int, "points_sampled": bool,
}  # fmt: skip
# What damaged or hostile bytes can raise while being decoded (RecursionError is a RuntimeError).
DAMAGE = (ValueError, TypeError, KeyError, EOFError, RuntimeError, NotImplementedError,
          zipfile.BadZipFile, zlib.error)  # fmt: skip



def weights_sha256(arrays):
    """Return the hex SHA-256 of weights: for each sorted name, its name, dtype, shape, bytes."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.asarray(arrays[key])
        digest.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        digest.update(a.tobytes(order="C"))
    return digest.hexdigest()


def write_npz(f, arrays, meta, x, y):
    """Write a version's .npz (its weights, meta and points) to the binary file f."""
    np.savez(f, allow_pickle=False, meta=np.array(json.dumps(meta)), train_x=x, train_y=y,
             **arrays)


def write_file(path, arrays, meta, x, y):
    """Write a new .npz at path and fsync it."""
    with open(path, "xb") as f:
        write_npz(f, arrays, meta, x, y)
        f.flush()
        # File times tick once per jiffy; an exact stamp keeps (inode, mtime, size) distinct
        # when a deleted version's number and inode are reused within one tick.
        now = time.time_ns()
        os.utime(f.fileno(), ns=(now, now))
        os.fsync(f.fileno())



@contextlib.contextmanager
def _zip_of(f):
    """Yield the zip in f after refusing unexpected, missing, too many or too large members."""
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        names = [info.filename for info in infos]
        if len(infos) > MAX_MEMBERS:
            raise ValueError(f"too many members ({len(infos)})")
        unexpected = sorted(n[:40] for n in names if not MEMBER_RE.fullmatch(n))
        if unexpected or len(set(names)) != len(names):
            raise ValueError(f"unexpected or repeated members {unexpected[:3]}")
        meta = next((info.file_size for info in infos if info.filename == "meta.npy"), 0)
        if meta > MAX_META_UNPACKED:
            raise ValueError(f"meta unpacks to {meta} bytes, over the limit of "
                             f"{MAX_META_UNPACKED}")
        total = sum(info.file_size for info in infos)
        if total > MAX_UNPACKED:
            raise ValueError(f"members unpack to {total} bytes, over the limit of {MAX_UNPACKED}")
        missing = sorted({"meta.npy", "train_x.npy", "train_y.npy"} - set(names))
        if missing:
            raise ValueError(f"missing members {missing}")
        yield zf


def _member(zf, key, copy=True):
    """Return member key as an array: CRC checked, size checked before allocating, no pickles;
    read-only over the member's bytes unless copy (the weights are written to)."""
    data = zf.read(f"{key}.npy")  # reads the whole member and verifies its CRC-32
    f = io.BytesIO(data)
    shape, fortran_order, dtype = _header(f)
    if dtype.hasobject:
        raise ValueError(f"{key}: object arrays cannot be loaded (pickles are refused)")
    count, start = math.prod(shape), f.tell()
    if count * dtype.itemsize > len(data) - start:
        raise ValueError(f"{key} declares more data than it holds")
    # The header is parsed once (np.lib.format.read_array would parse it again: half the cost).
    a = np.frombuffer(bytearray(data) if copy else data, dtype, count, offset=start)
    return a.reshape(shape, order="F" if fortran_order else "C")


def _header(f):
    """Return (shape, fortran_order, dtype) of the .npy header at f, leaving f after it."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _read_meta(zf):
    """Return the meta dict of zf: a JSON object with the known format and typed fields."""
    a = _member(zf, "meta", copy=False)
    if a.dtype.kind != "U" or a.shape != ():
        raise ValueError("meta is not a 0-d unicode array")
    text = a.item()
    if (values := text.count(",") + 1) > MAX_META_VALUES:
        raise ValueError(f"meta holds about {values} values, over the limit of "
                         f"{MAX_META_VALUES}")
    try:
        meta = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise ValueError(f"meta is not valid JSON ({jsoncodec.plain_reason(exc)})") from None
    if type(meta) is not dict:
        raise ValueError("meta is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown format version {meta.get('format')!r:.20}")
    for key, kind in META_TYPES.items():
        if type(meta.get(key)) is not kind:
            raise ValueError(f"meta field {key!r} is missing or not a {kind.__name__}")
    return meta


def read_meta_only(f):
    with _zip_of(f) as zf:
        return _read_meta(zf)


def read_contents(f):
    """Return (model, meta, x, y) of the .npz in f, validated in full."""
    with _zip_of(f) as zf:
        meta = _read_meta(zf)
        names = [info.filename[:-4] for info in zf.infolist()]
        arrays = {key: _member(zf, key) for key in names if key[0] in "Wb"}
        if weights_sha256(arrays) != meta["sha256"]:
            raise ValueError("checksum mismatch")
        model = Model.from_arrays(arrays, meta)
        x, y = _member(zf, "train_x"), _member(zf, "train_y")
    if x.dtype.kind != "f" or y.dtype.kind != "f":
        raise ValueError("training points are not floats")
    x, y = check_dataset(x, y)
    if len(x) != meta["points_stored"]:
        raise ValueError(f"{len(x)} training points stored, meta says {meta['points_stored']}")
    return model, meta, x, y


def read_checked_bytes(f):
    data = f.read()
    read_contents(io.BytesIO(data))
    return data


def damage_reason(exc):
    return (str(exc) or type(exc).__name__)[:200]


def _finite_float(text):
    """Return the float of a JSON number; 1e999 and the like overflow to infinity: refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed")



def sample_points(x, y):
    """Return (x, y), or a seeded sample of MAX_POINTS of its rows in their original order."""
    if len(x) <= MAX_POINTS:
        return x, y
    rows = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(x), MAX_POINTS, replace=False))
    return x[rows], y[rows]


def plain_json(value):
    """Return a NumPy scalar or array as plain Python for JSON."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")

