"""The model store: the only code that reads or writes model files.

Layout: ``<root>/<name>/<version>.npz`` with versions 1, 2, 3, ...; "latest" is
the highest. Entries starting with "." are not models (temp files, tombstones,
the job database). Each file holds the weights (W0, b0, ...), ``meta`` (JSON in
a 0-d unicode array) and the training points ``train_x: (n, 2)``,
``train_y: (n,)``. Files are refused, never executed: no pickles, and every
member, shape, dtype and checksum is checked before a model is built.
"""

import io
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import CorruptModel, InvalidModelFile, ModelNotFound, StoreUnavailable
from ..nn.datasets import check_dataset
from .cache import Lru, ModelCache
from .disk import (
    check_name,
    check_version,
    delete_model,
    delete_version,
    file_identity,
    fsync_dir,
    list_names,
    list_versions,
    map_os_error,
    os_errors,
    place,
    sweep_temps,
)
from .generation import Generation
from .npzfile import (
    DAMAGE,
    FORMAT,
    MAX_POINTS,
    META_TYPES,
    damage_reason,
    plain_json,
    read_checked_bytes,
    read_contents,
    read_meta_only,
    sample_points,
    thin_history,
    utc_now,
    weights_sha256,
)

__all__ = ["MAX_POINTS", "SETTLED_NS", "Lru", "ModelStore", "map_os_error", "weights_sha256"]

# A folder changed this recently may change again within the file system's clock tick
# without its mtime moving, so a load does not remember it (git's "racy" entries).
SETTLED_NS = 50_000_000
# A folder's stat is reused while the store's generation stands still, for at most this
# long: changes made by hand (not through a ModelStore) are seen within it.
RECHECK_S = 1.0
MAX_ATTEMPTS = 1000  # each failed attempt means another writer took the version


class ModelStore:
    """Versioned model files under root, with an LRU cache of loaded models."""

    def __init__(self, root, cache_size=32):
        self.root = Path(root)
        self._root = str(self.root)
        self.cache = ModelCache(cache_size)
        self.listed = Lru(64 * cache_size)  # (name, version, file identity) -> its metrics
        self.generation = Generation(self._root)
        self._stats = {}  # name -> (generation, time, folder state) of its last stat

    def save(self, name, model, *, dataset, metrics, history, x, y):
        """Return the meta of a new version of name holding model, its points and metadata."""
        check_name(name)
        x, y = check_dataset(x, y)
        arrays, meta = model.to_arrays()
        kept_x, kept_y = sample_points(x, y)
        balance = {"0": int(np.count_nonzero(y == 0)), "1": int(np.count_nonzero(y == 1))}
        meta.update(
            format=FORMAT,
            dataset={**dataset, "class_balance": balance},
            metrics=dict(metrics),
            history={key: thin_history(values) for key, values in history.items()},
            sha256=weights_sha256(arrays),
            points_stored=len(kept_x),
            points_sampled=len(kept_x) < len(x),
        )
        return self._write(name, arrays, meta, kept_x, kept_y)

    def load(self, name, version=None):
        """Return (model, meta) of a version (None: latest); both are shared, do not mutate.

        Every save or delete in a model's folder changes its mtime, and only a folder left
        alone for a while is trusted; a repeated load costs one stat of the folder, or none
        while the store's generation stands still (see generation.py)."""
        check_name(name)
        state, settled = self._folder_state(name, version)
        hit = self.cache.hit(name, version, state)
        if hit:
            return hit
        model, meta = self._load(name, version)
        if settled:
            self.cache.resolve(name, version, state, meta["version"])
        return model, meta

    def _folder_state(self, name, version):
        """Return ((inode, mtime) of a model's folder, whether it was settled when stat-ed);
        ModelNotFound when there is none.

        A settled folder's stat holds while the generation read before it stands still, for
        up to RECHECK_S. The counter is mapped at the second load of a name: a store that
        loads a model once stats, as it would anyway, and maps nothing."""
        seen, now = self._stats.get(name), time.monotonic()
        generation = self.generation.read() if seen else self.generation.peek()
        if seen and generation is not None and seen[0] == generation and now < seen[1]:
            return seen[2], True
        taken = time.time_ns()
        # A str path and a plain try cost a third of Path and the os_errors context manager.
        try:
            st = os.stat(os.path.join(self._root, name))
        except (FileNotFoundError, NotADirectoryError):
            raise ModelNotFound(name, version) from None
        except OSError as exc:
            raise map_os_error(exc, f"read model {name!r}") from exc
        if self.generation.revalidate():  # a counter file replaced by hand: map it again,
            generation = None  # and trust no value read from the old one
        state = st.st_ino, st.st_mtime_ns
        settled = taken - st.st_mtime_ns > SETTLED_NS
        if settled:
            if len(self._stats) >= self.cache.size * 64:  # names asked for, bounded
                self._stats.clear()
            self._stats[name] = (generation, now + RECHECK_S, state)
        return state, settled

    def _load(self, name, version):
        """Return (model, meta), checking the version file's identity against the cache."""
        version = self._resolve(name, version)
        identity = self._identity(name, version)
        hit = self.cache.model(name, version, identity)
        if hit:
            return hit
        identity, (model, meta, _, _) = self._read(name, version)
        self.cache.keep(name, version, identity, model, meta)
        return model, meta

    def meta(self, name, version=None):
        """Return the meta of a version (None: latest), reading only the file's meta member."""
        version = self._resolve(name, version)
        return self._meta(name, version)[1]

    def versions(self, name):
        """Return the meta of each version of name, oldest first; damaged: {version, corrupt}."""
        found = list_versions(self.root, check_name(name))
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
        for name in list_names(self.root):
            found = list_versions(self.root, name)
            if not found:
                continue
            row = {"name": name, "latest": found[-1], "versions": len(found)}
            try:
                row["metrics"] = self._listed_metrics(name, found[-1])
            except CorruptModel as exc:
                row["corrupt"] = exc.extra["reason"]
            except ModelNotFound:
                continue  # deleted while we were listing
            rows.append(row)
        return rows

    def _listed_metrics(self, name, version):
        """Return a version's metrics, read and checked once per file identity (a listing
        of many models then costs a stat per model, not a parse of each one's history)."""
        identity = self._identity(name, version)
        key = (name, version, identity)
        metrics = self.listed.get(key)
        if metrics is None:
            metrics = self._checked_meta(name, version)["metrics"]
            self.listed.put(key, metrics)
        return metrics

    def points(self, name, version=None):
        """Return (x, y): the training points stored with a version (None: latest)."""
        version = self._resolve(name, version)
        _, (_, _, x, y) = self._read(name, version)
        return x, y

    def delete(self, name, version=None):
        """Remove one version, or the whole model when version is None; return None."""
        check_name(name)
        try:
            with os_errors(f"delete model {name!r}"):
                if version is None:
                    delete_model(self.root, name)
                else:
                    delete_version(self.root, name, check_version(version))
        finally:  # even a delete that failed half-way may have removed something
            self._changed(name)
        self.cache.forget(name, version)

    def export(self, name, version=None):
        """Return (bytes, filename) of a version (None: latest), checked before it leaves."""
        version = self._resolve(name, version)
        _, data = self._load_file(name, version, read_checked_bytes)
        return data, f"{name}-v{version}.npz"

    def import_npz(self, name, data, check=None):
        """Return the meta of a new version of name made from uploaded .npz bytes.

        check(model), when given, may refuse the valid model (limits) before it is saved."""
        check_name(name)
        try:
            model, meta, x, y = read_contents(io.BytesIO(data))
        except DAMAGE as exc:
            reason = damage_reason(exc)
            detail = f"uploaded model file is invalid: {reason}"
            raise InvalidModelFile(detail, reason=reason) from None
        if check is not None:
            check(model)
        arrays, _ = model.to_arrays()
        kept = {key: meta[key] for key in META_TYPES}  # unknown keys are dropped
        return self._write(name, arrays, {**kept, "sha256": weights_sha256(arrays)}, x, y)

    def check_writable(self):
        """Return None if a file can be created, synced and removed; else raise a store error."""
        with os_errors("write to the model store"):
            self.root.mkdir(parents=True, exist_ok=True)
            self.generation.make()  # a store whose counter cannot be bumped is not ready
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
        meta = json.loads(json.dumps(meta, allow_nan=False, default=plain_json))
        directory = self.root / name
        with os_errors(f"save model {name!r}"):
            for _ in range(MAX_ATTEMPTS):
                if not directory.is_dir():
                    directory.mkdir(parents=True, exist_ok=True)
                    fsync_dir(self.root)
                version = (list_versions(self.root, name) or [0])[-1] + 1
                stamped = {**meta, "name": name, "version": version, "created_at": utc_now()}
                try:
                    placed = place(directory, arrays, stamped, x, y)
                finally:  # a place that failed after linking the file still changed the folder
                    self._changed(name)
                if placed:
                    sweep_temps(directory)
                    return stamped
        raise StoreUnavailable(f"cannot save model {name!r}: no free version found")

    def _changed(self, name):
        """Tell every process that name's folder changed: this one forgets its stat (even if
        the counter cannot be bumped), the others see the counter move."""
        self._stats.pop(name, None)
        self.generation.bump()

    def _read(self, name, version):
        """Return (identity, (model, meta, x, y)) of a version, validated in full."""
        identity, (model, meta, x, y) = self._load_file(name, version, read_contents)
        self.cache.verified(name, version, identity)
        return identity, (model, {**meta, "name": name, "version": version}, x, y)

    def _meta(self, name, version):
        """Return (identity, meta) of a version from its meta member alone."""
        identity, meta = self._load_file(name, version, read_meta_only)
        return identity, {**meta, "name": name, "version": version}

    def _checked_meta(self, name, version):
        """Return the meta of a version, validating the whole file once per file identity."""
        identity, meta = self._meta(name, version)
        if self.cache.is_verified(name, version, identity):
            return meta
        return self._read(name, version)[1][1]

    def _identity(self, name, version):
        """Return the identity (inode, mtime, size) of a stored version's file."""
        with os_errors(f"read model {name!r}"):
            try:
                return file_identity(os.stat(self._path(name, version)))
            except FileNotFoundError:
                raise ModelNotFound(name, version) from None

    def _load_file(self, name, version, decode):
        """Return (identity, decode(file)) of a stored version; damage raises CorruptModel."""
        with os_errors(f"read model {name!r}"):
            try:
                f = open(self._path(name, version), "rb")
            except FileNotFoundError:
                raise ModelNotFound(name, version) from None
            with f:
                try:
                    return file_identity(os.fstat(f.fileno())), decode(f)
                except DAMAGE as exc:
                    reason = damage_reason(exc)
                    detail = f"model {name!r} version {version} is corrupt: {reason}"
                    raise CorruptModel(detail, reason=reason) from None

    def _resolve(self, name, version):
        """Return version, or the latest version of name when it is None."""
        check_name(name)
        if version is not None:
            return check_version(version)
        found = list_versions(self.root, name)
        if not found:
            raise ModelNotFound(name)
        return found[-1]

    def _path(self, name, version):
        return self.root / name / f"{version}.npz"

