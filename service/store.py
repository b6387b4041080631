"""The model store: the only code that reads or writes model files.

Layout: ``<root>/<name>/<version>.npz`` with versions 1, 2, 3, ...; "latest" is
the highest. Entries starting with "." are not models (temp files, tombstones,
the job database). Each file holds the weights (W0, b0, ...), ``meta`` (JSON in
a 0-d unicode array) and the training points ``train_x: (n, 2)``,
``train_y: (n,)``. Files are refused, never executed: no pickles, and every
member, shape, dtype and checksum is checked before a model is built.
"""

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
import zipfile
import zlib
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .errors import (
    CorruptModel,
    InvalidInput,
    InvalidModelFile,
    InvalidName,
    ModelNotFound,
    StoreFull,
    StoreUnavailable,
)
from .nn.datasets import check_dataset
from .nn.model import Model

FORMAT = 1
# The first character excludes ".", "..", hidden names and "-options"; ASCII only.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}", re.ASCII)
VERSION_RE = re.compile(r"[1-9][0-9]{0,17}\.npz", re.ASCII)
MAX_VERSION = 10**18 - 1  # the most digits VERSION_RE lists
MEMBER_RE = re.compile(r"(meta|train_x|train_y|[Wb][0-9]{1,3})\.npy", re.ASCII)
MAX_MEMBERS = 64
MAX_UNPACKED = 64 * 2**20  # bytes once inflated: refuses zip bombs before reading them
MAX_POINTS = 10_000
MAX_HISTORY_ROWS = 1001
SAMPLE_SEED = 0
# A folder changed this recently may change again within the file system's clock tick
# without its mtime moving, so a load does not remember it (git's "racy" entries).
SETTLED_NS = 50_000_000
STALE_S = 3600.0  # hidden temp files older than this are debris of killed writers
MAX_ATTEMPTS = 1000  # each failed attempt means another writer took the version
META_TYPES = {
    "format": int, "name": str, "version": int, "created_at": str, "architecture": dict,
    "training": dict, "dataset": dict, "metrics": dict, "history": dict, "sha256": str,
    "points_stored": int, "points_sampled": bool,
}  # fmt: skip
# What damaged or hostile bytes can raise while being decoded (RecursionError is a RuntimeError).
DAMAGE = (ValueError, TypeError, KeyError, EOFError, RuntimeError, NotImplementedError,
          zipfile.BadZipFile, zlib.error)  # fmt: skip


class ModelStore:
    """Versioned model files under root, with an LRU cache of loaded models."""

    def __init__(self, root, cache_size=32):
        self.root = Path(root)
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._cache = OrderedDict()  # (name, version) -> (file identity, model, meta)
        self._resolved = OrderedDict()  # (name, asked version) -> (folder state, version)
        self._verified = OrderedDict()  # (name, version) -> identity of a fully checked file

    def save(self, name, model, *, dataset, metrics, history, x, y):
        """Return the meta of a new version of name holding model, its points and metadata."""
        _check_name(name)
        x, y = check_dataset(x, y)
        arrays, meta = model.to_arrays()
        kept_x, kept_y = _sample(x, y)
        balance = {"0": int(np.count_nonzero(y == 0)), "1": int(np.count_nonzero(y == 1))}
        meta.update(
            format=FORMAT,
            dataset={**dataset, "class_balance": balance},
            metrics=dict(metrics),
            history={key: _thin(values) for key, values in history.items()},
            sha256=weights_sha256(arrays),
            points_stored=len(kept_x),
            points_sampled=len(kept_x) < len(x),
        )
        return self._write(name, arrays, meta, kept_x, kept_y)

    def load(self, name, version=None):
        """Return (model, meta) of a version (None: latest); both are shared, do not mutate.

        A repeated load costs one stat of the model's folder: every save or delete there
        changes the folder's mtime, and only a folder left alone for a while is trusted."""
        _check_name(name)
        state = self._folder_state(name, version)
        with self._lock:
            seen = self._resolved.get((name, version))
            hit = seen and seen[0] == state and self._cache.get((name, seen[1]))
            if hit:
                self._cache.move_to_end((name, seen[1]))
                return hit[1], hit[2]
        model, meta = self._load(name, version)
        if time.time_ns() - state[1] > SETTLED_NS:
            with self._lock:
                self._resolved[(name, version)] = (state, meta["version"])
                while len(self._resolved) > 2 * self.cache_size:
                    self._resolved.popitem(last=False)
        return model, meta

    def _folder_state(self, name, version):
        """Return (inode, mtime) of a model's folder; ModelNotFound when there is none."""
        with _os_errors(f"read model {name!r}"):
            try:
                st = os.stat(self.root / name)
            except (FileNotFoundError, NotADirectoryError):
                raise ModelNotFound(name, version) from None
        return st.st_ino, st.st_mtime_ns

    def _load(self, name, version):
        """Return (model, meta), checking the version file's identity against the cache."""
        version = self._resolve(name, version)
        key = (name, version)
        with _os_errors(f"read model {name!r}"):
            try:
                identity = _identity(os.stat(self._path(name, version)))
            except FileNotFoundError:
                raise ModelNotFound(name, version) from None
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == identity:
                self._cache.move_to_end(key)
                return hit[1], hit[2]
        identity, (model, meta, _, _) = self._read(name, version)
        with self._lock:
            self._cache[key] = (identity, model, meta)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return model, meta

    def meta(self, name, version=None):
        """Return the meta of a version (None: latest), reading only the file's meta member."""
        version = self._resolve(name, version)
        return self._meta(name, version)[1]

    def versions(self, name):
        """Return the meta of each version of name, oldest first; damaged: {version, corrupt}."""
        found = self._versions(_check_name(name))
        if not found:
            raise ModelNotFound(name)
        metas = []
        for version in found:
            try:
                metas.append(self._checked_meta(name, version))
            except CorruptModel as exc:
                metas.append({"version": version, "corrupt": exc.extra["reason"]})
            except ModelNotFound:
                continue  # deleted while we were listing
        return metas

    def list_models(self):
        """Return [{name, latest, versions, metrics or corrupt}] for every model, by name."""
        rows = []
        for name in self._names():
            found = self._versions(name)
            if not found:
                continue
            row = {"name": name, "latest": found[-1], "versions": len(found)}
            try:
                row["metrics"] = self._checked_meta(name, found[-1])["metrics"]
            except CorruptModel as exc:
                row["corrupt"] = exc.extra["reason"]
            except ModelNotFound:
                continue  # deleted while we were listing
            rows.append(row)
        return rows

    def points(self, name, version=None):
        """Return (x, y): the training points stored with a version (None: latest)."""
        version = self._resolve(name, version)
        _, (_, _, x, y) = self._read(name, version)
        return x, y

    def delete(self, name, version=None):
        """Remove one version, or the whole model when version is None; return None."""
        _check_name(name)
        with _os_errors(f"delete model {name!r}"):
            if version is None:
                self._delete_model(name)
            else:
                self._delete_version(name, _check_version(version))
        with self._lock:
            for key in [k for k in self._cache if k[0] == name and version in (None, k[1])]:
                del self._cache[key]

    def export(self, name, version=None):
        """Return (bytes, filename) of a version (None: latest), checked before it leaves."""
        version = self._resolve(name, version)
        _, data = self._load_file(name, version, _checked_bytes)
        return data, f"{name}-v{version}.npz"

    def import_npz(self, name, data):
        """Return the meta of a new version of name made from uploaded .npz bytes."""
        _check_name(name)
        try:
            model, meta, x, y = _contents(io.BytesIO(data))
        except DAMAGE as exc:
            reason = _reason(exc)
            detail = f"uploaded model file is invalid: {reason}"
            raise InvalidModelFile(detail, reason=reason) from None
        arrays, _ = model.to_arrays()
        kept = {key: meta[key] for key in META_TYPES}  # unknown keys are dropped
        return self._write(name, arrays, {**kept, "sha256": weights_sha256(arrays)}, x, y)

    def check_writable(self):
        """Return None if a file can be created, synced and removed; else raise a store error."""
        with _os_errors("write to the model store"):
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            try:
                with open(probe, "xb") as f:
                    f.write(b"ok")
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                probe.unlink(missing_ok=True)

    def _write(self, name, arrays, meta, x, y):
        """Return meta as stored in the next free version of name; never overwrites a file."""
        # Normalised up front: meta that cannot be stored fails before the disk is touched,
        # and the meta returned equals what meta() reads back.
        meta = json.loads(json.dumps(meta, allow_nan=False, default=_plain))
        directory = self.root / name
        with _os_errors(f"save model {name!r}"):
            for _ in range(MAX_ATTEMPTS):
                if not directory.is_dir():
                    directory.mkdir(parents=True, exist_ok=True)
                    _fsync_dir(self.root)
                version = (self._versions(name) or [0])[-1] + 1
                stamped = {**meta, "name": name, "version": version, "created_at": _now()}
                if _place(directory, arrays, stamped, x, y):
                    _sweep_temps(directory)
                    return stamped
        raise StoreUnavailable(f"cannot save model {name!r}: no free version found")

    def _delete_version(self, name, version):
        directory = self.root / name
        try:
            os.unlink(self._path(name, version))
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        _fsync_dir(directory)
        if not self._versions(name):
            with contextlib.suppress(OSError):  # a concurrent save may have refilled it
                directory.rmdir()

    def _delete_model(self, name):
        # Renaming first hides the whole model in one step: no half-deleted state is visible.
        if not self._versions(name):
            raise ModelNotFound(name)
        try:
            os.rename(self.root / name, self.root / f".trash-{uuid.uuid4().hex}")
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        _fsync_dir(self.root)
        with os.scandir(self.root) as entries:  # also tombstones left by killed deletes
            tombstones = [e.path for e in entries if e.name.startswith(".trash-")]
        for path in tombstones:
            shutil.rmtree(path, ignore_errors=True)

    def _read(self, name, version):
        """Return (identity, (model, meta, x, y)) of a version, validated in full."""
        identity, (model, meta, x, y) = self._load_file(name, version, _contents)
        with self._lock:
            self._verified[(name, version)] = identity
            while len(self._verified) > 64 * self.cache_size:  # verdicts are tiny; keep many
                self._verified.popitem(last=False)
        return identity, (model, {**meta, "name": name, "version": version}, x, y)

    def _meta(self, name, version):
        """Return (identity, meta) of a version from its meta member alone."""
        identity, meta = self._load_file(name, version, _meta_only)
        return identity, {**meta, "name": name, "version": version}

    def _checked_meta(self, name, version):
        """Return the meta of a version, validating the whole file once per file identity."""
        identity, meta = self._meta(name, version)
        with self._lock:
            if self._verified.get((name, version)) == identity:
                return meta
        return self._read(name, version)[1][1]

    def _load_file(self, name, version, decode):
        """Return (identity, decode(file)) of a stored version; damage raises CorruptModel."""
        with _os_errors(f"read model {name!r}"):
            try:
                f = open(self._path(name, version), "rb")
            except FileNotFoundError:
                raise ModelNotFound(name, version) from None
            with f:
                try:
                    return _identity(os.fstat(f.fileno())), decode(f)
                except DAMAGE as exc:
                    reason = _reason(exc)
                    detail = f"model {name!r} version {version} is corrupt: {reason}"
                    raise CorruptModel(detail, reason=reason) from None

    def _resolve(self, name, version):
        """Return version, or the latest version of name when it is None."""
        _check_name(name)
        if version is not None:
            return _check_version(version)
        found = self._versions(name)
        if not found:
            raise ModelNotFound(name)
        return found[-1]

    def _versions(self, name):
        """Return the sorted version numbers of name (empty when the model is absent)."""
        with _os_errors(f"read model {name!r}"):
            try:
                with os.scandir(self.root / name) as entries:
                    return sorted(
                        int(e.name[:-4])
                        for e in entries
                        if VERSION_RE.fullmatch(e.name) and e.is_file()
                    )
            except (FileNotFoundError, NotADirectoryError):
                return []

    def _names(self):
        """Return the sorted model names: directories with a valid name, hidden ones excluded."""
        with _os_errors("list models"):
            try:
                with os.scandir(self.root) as entries:
                    names = [e.name for e in entries if NAME_RE.fullmatch(e.name) and e.is_dir()]
                return sorted(names)
            except FileNotFoundError:
                return []

    def _path(self, name, version):
        return self.root / name / f"{version}.npz"


def weights_sha256(arrays):
    """Return the hex SHA-256 of weights: for each sorted name, its name, dtype, shape, bytes."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.asarray(arrays[key])
        digest.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        digest.update(a.tobytes(order="C"))
    return digest.hexdigest()


def map_os_error(exc, action):
    """Return the domain error for an OSError met while doing action: full (507) or else
    unavailable (503: read-only, no permission, a file where a folder should be, I/O errors).

    The message names the action but never a path: it reaches HTTP clients."""
    why = os.strerror(exc.errno) if exc.errno else "unknown error"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"cannot {action}: model store is full ({why})")
    return StoreUnavailable(f"cannot {action}: model store unavailable ({why})")


@contextlib.contextmanager
def _os_errors(action):
    try:
        yield
    except OSError as exc:
        raise map_os_error(exc, action) from exc


def _check_name(name):
    """Return name if it is one safe path component; else raise InvalidName."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name[:70]) if isinstance(name, str) else f"of type {type(name).__name__}"
        raise InvalidName(
            f"invalid model name {shown}: use 1 to 64 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


def _check_version(version):
    """Return version if it is a positive int (bool excluded); else raise InvalidInput."""
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise InvalidInput(f"version must be an integer from 1 to {MAX_VERSION}, "
                           f"got {version!r:.40}", ("version",))
    return version


def _place(directory, arrays, meta, x, y):
    """Return True once the file is durably in place as meta's version, False if it is taken."""
    tmp = directory / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        _write_file(tmp, arrays, meta, x, y)
        os.link(tmp, directory / f"{meta['version']}.npz")  # fails, never overwrites, if taken
    except (FileExistsError, FileNotFoundError):  # taken, or the directory was just deleted
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(directory)
    return True


def _write_file(path, arrays, meta, x, y):
    """Write a new .npz at path and fsync it."""
    with open(path, "xb") as f:
        np.savez(f, allow_pickle=False, meta=np.array(json.dumps(meta)), train_x=x, train_y=y,
                 **arrays)
        f.flush()
        # File times tick once per jiffy; an exact stamp keeps (inode, mtime, size) distinct
        # when a deleted version's number and inode are reused within one tick.
        now = time.time_ns()
        os.utime(f.fileno(), ns=(now, now))
        os.fsync(f.fileno())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep_temps(directory):
    """Remove hidden temp files older than STALE_S from directory."""
    cutoff = time.time() - STALE_S
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)


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
        total = sum(info.file_size for info in infos)
        if total > MAX_UNPACKED:
            raise ValueError(f"members unpack to {total} bytes, over the limit of {MAX_UNPACKED}")
        missing = sorted({"meta.npy", "train_x.npy", "train_y.npy"} - set(names))
        if missing:
            raise ValueError(f"missing members {missing}")
        yield zf


def _member(zf, key):
    """Return member key as an array: CRC checked, size checked before allocating, no pickles."""
    data = zf.read(f"{key}.npy")  # reads the whole member and verifies its CRC-32
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype.hasobject:
        raise ValueError(f"{key}: object arrays cannot be loaded (pickles are refused)")
    count, start = math.prod(shape), f.tell()
    if count * dtype.itemsize > len(data) - start:
        raise ValueError(f"{key} declares more data than it holds")
    # The header is parsed once (np.lib.format.read_array would parse it again: half the cost).
    a = np.frombuffer(bytearray(data), dtype, count, offset=start)
    return a.reshape(shape, order="F" if fortran_order else "C")


def _read_meta(zf):
    """Return the meta dict of zf: a JSON object with the known format and typed fields."""
    a = _member(zf, "meta")
    if a.dtype.kind != "U" or a.shape != ():
        raise ValueError("meta is not a 0-d unicode array")
    try:
        meta = json.loads(a.item(), parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"meta is not valid JSON ({exc})") from None
    if type(meta) is not dict:
        raise ValueError("meta is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown format version {meta.get('format')!r:.20}")
    for key, kind in META_TYPES.items():
        if type(meta.get(key)) is not kind:
            raise ValueError(f"meta field {key!r} is missing or not a {kind.__name__}")
    return meta


def _meta_only(f):
    with _zip_of(f) as zf:
        return _read_meta(zf)


def _contents(f):
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


def _checked_bytes(f):
    data = f.read()
    _contents(io.BytesIO(data))
    return data


def _reason(exc):
    return (str(exc) or type(exc).__name__)[:200]


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed")


def _identity(st):
    return st.st_ino, st.st_mtime_ns, st.st_size


def _now():
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sample(x, y):
    """Return (x, y), or a seeded sample of MAX_POINTS of its rows in their original order."""
    if len(x) <= MAX_POINTS:
        return x, y
    rows = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(x), MAX_POINTS, replace=False))
    return x[rows], y[rows]


def _thin(values):
    """Return values as a list of at most MAX_HISTORY_ROWS, keeping the first and the last."""
    values = list(values)
    if len(values) <= MAX_HISTORY_ROWS:
        return values
    rows = np.linspace(0, len(values) - 1, MAX_HISTORY_ROWS).round().astype(int)
    return [values[i] for i in rows]


def _plain(value):
    """Return a NumPy scalar or array as plain Python for JSON."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
