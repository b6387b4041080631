"""FileStore: model versions as files, ``<root>/<name>/<version>.npz``.

Entries starting with "." are not models (temp files, tombstones, the job database, the
generation counter). A version is written to a hidden temporary file, fsynced, and linked
into place under the next free number, which never overwrites (disk.py).
"""

import logging
import os
import uuid
from functools import partial
from pathlib import Path

from ..errors import AliasNotFound, CorruptModel, ModelNotFound, StoreUnavailable
from ..names import check_alias, check_name, check_version
from ..timestamps import utc_iso
from .aliases import read_aliases, remove_alias, write_alias
from .base import ModelStore, read_latest
from .disk import (
    delete_model,
    delete_version,
    figure_path,
    file_identity,
    folder_versions,
    fsync_dir,
    list_names,
    list_versions,
    locked_folder,
    map_os_error,
    open_folder,
    os_errors,
    place,
    reserve_version,
    sweep_temps,
    write_figure,
)
from .memory import MAX_LISTED, StoreMemory
from .npzfile import DAMAGE, damage_reason, read_checked_bytes, read_contents, read_meta_only

log = logging.getLogger("nnserve.store")
MAX_ATTEMPTS = 1000  # each failed attempt means another writer took the version


class FileStore(ModelStore):
    """Versioned model files under root, with this process's memory of them (memory.py)."""

    def __init__(self, root, cache_size=32):
        self.root = Path(root)
        self._root = str(self.root)
        self.memory = StoreMemory(self._root, cache_size)
        self.cache = self.memory.cache

    def load(self, name, version=None):
        """Return (model, meta) of a version (None: latest); both are shared, do not mutate."""
        check_name(name)
        state, settled = self.memory.folder_state(name, version, self._stat_folder)
        hit = self.cache.hit(name, version, state)
        if hit:
            return hit
        model, meta = self._load(name, version)
        if settled:
            self.cache.resolve(name, version, state, meta["version"])
        return model, meta

    def _stat_folder(self, name, version):
        """Return (inode, mtime) of name's folder; ModelNotFound when there is none."""
        try:  # a str path and a plain try cost a third of Path and os_errors
            st = os.stat(os.path.join(self._root, name))
        except (FileNotFoundError, NotADirectoryError):
            raise ModelNotFound(name, version) from None
        except OSError as exc:
            raise map_os_error(exc, f"read model {name!r}") from exc
        return st.st_ino, st.st_mtime_ns

    def _load(self, name, version):
        """Return (model, meta), checking the version file's identity against the cache."""
        return self._reading(name, version, partial(self._load_version, name))

    def _load_version(self, name, version):
        identity = self._identity(name, version)
        hit = self.cache.model(name, version, identity)
        if hit:
            return hit
        identity, (model, meta, _, _) = self._read(name, version)
        self.cache.keep(name, version, identity, model, meta)
        return model, meta

    def meta(self, name, version=None):
        """Return the meta of a version (None: latest), reading only the file's meta member."""
        return self._reading(name, version, lambda v: self._meta(name, v)[1])

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
        if not metas:  # every one was deleted meanwhile
            raise ModelNotFound(name)
        return metas

    def list_models(self):
        """Return [{name, latest, versions, metrics or corrupt}] for every model, by name."""
        rows, names = [], list_names(self.root)
        self.memory.listed.hold(min(len(names), MAX_LISTED))
        for name in names:
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
        key = (name, version, self._identity(name, version))
        metrics = self.memory.listed.get(key)
        if metrics is None:
            metrics = self._checked_meta(name, version)["metrics"]
            self.memory.listed.put(key, metrics)
        return metrics

    def points(self, name, version=None):
        """Return (x, y): the training points stored with a version (None: latest)."""
        _, (_, _, x, y) = self._reading(name, version, partial(self._read, name))
        return x, y

    def export(self, name, version=None):
        """Return (bytes, filename) of a version (None: latest), checked before it leaves."""
        def export(version):
            return self._load_file(name, version, read_checked_bytes)[1], version

        data, version = self._reading(name, version, export)
        return data, f"{name}-v{version}.npz"

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
            self.memory.changed(name)
        self.cache.forget(name, version)

    def figure(self, name, version, key):
        """Return the PNG kept beside a version under key, or None."""
        try:
            with open(figure_path(self.root, check_name(name), version, key), "rb") as f:
                return f.read()
        except OSError:
            return None

    def put_figure(self, name, version, key, png):
        """Keep png beside a version under key (best effort: a failing medium is logged)."""
        try:
            write_figure(self.root / check_name(name), version, key, png)
        except (FileNotFoundError, NotADirectoryError):  # the model was deleted meanwhile
            pass
        except OSError as exc:
            log.warning("figure of model %r version %s not kept: %s", name, version, exc)

    def aliases(self, name):
        """Return {alias: version} of name, by alias (empty when it has none)."""
        with os_errors(f"read model {name!r}"):
            try:
                with open_folder(self.root / check_name(name)) as folder:
                    found = read_aliases(folder)
                    versions = set(folder_versions(folder)) if found else set()
            except (FileNotFoundError, NotADirectoryError):
                return {}
        return {alias: v for alias, v in found.items() if v in versions}  # none left dangling

    def set_alias(self, name, alias, version):
        """Point alias at version of name; ModelNotFound naming the version if it is absent.
        Under the folder's lock: a delete of the version comes wholly before (refused) or
        after (the alias goes with the version)."""
        check_name(name), check_alias(alias), check_version(version)
        with os_errors(f"save an alias of model {name!r}"):
            try:
                with locked_folder(self.root / name) as folder:
                    if version not in folder_versions(folder):
                        raise ModelNotFound(name, version)
                    write_alias(folder, alias, version)
            except (FileNotFoundError, NotADirectoryError):  # no model, or deleted meanwhile
                raise ModelNotFound(name, version) from None
            finally:
                self.memory.changed(name)

    def delete_alias(self, name, alias):
        """Remove an alias; AliasNotFound when name has none of that name."""
        check_name(name), check_alias(alias)
        with os_errors(f"delete an alias of model {name!r}"):
            try:
                with locked_folder(self.root / name) as folder:
                    removed = remove_alias(folder, alias)
            except (FileNotFoundError, NotADirectoryError):
                removed = False
        self.memory.changed(name)
        if not removed:
            raise AliasNotFound(name, alias)

    def ping(self):
        """Return None if a file can be created, synced and removed; else raise a store error."""
        with os_errors("write to the model store"):
            self.root.mkdir(parents=True, exist_ok=True)
            self.memory.generation.make()  # a store whose counter cannot be bumped is not ready
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            try:
                with open(probe, "xb") as f:
                    f.write(b"ok")
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                probe.unlink(missing_ok=True)

    def _add(self, name, arrays, meta, x, y, fence=None):
        """Return meta as stored in the next free version of name; never overwrites a file.
        The fence is checked before and again just before the file is linked (files cannot
        take part in the jobs' transaction): a worker paused past its lease while it wrote
        the file adds no version to a job reported failed."""
        if fence is not None:
            fence.hold()
        directory = self.root / name
        with os_errors(f"save model {name!r}"):
            for _ in range(MAX_ATTEMPTS):
                if not directory.is_dir():
                    directory.mkdir(parents=True, exist_ok=True)
                    fsync_dir(self.root)
                try:
                    with open_folder(directory) as folder:
                        version = reserve_version(directory, folder)
                        stamped = {**meta, "name": name, "version": version,
                                   "created_at": utc_iso()}
                        try:
                            placed = place(directory, folder, arrays, stamped, x, y,
                                           None if fence is None else fence.hold)
                        finally:  # a place that failed after linking still changed the folder
                            self.memory.changed(name)
                except FileNotFoundError:  # the model was deleted meanwhile: recreate it
                    continue
                if placed:
                    sweep_temps(directory)
                    return stamped
        raise StoreUnavailable(f"cannot save model {name!r}: no free version found")

    def _read(self, name, version):
        """Return (identity, (model, meta, x, y)) of a version, validated in full."""
        identity, (model, meta, x, y) = self._load_file(name, version, read_contents)
        self.cache.mark_verified(name, version, identity)
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
            except IsADirectoryError:  # listed as a version (disk.list_versions): corrupt
                reason = "not a file"
                detail = f"model {name!r} version {version} is corrupt: {reason}"
                raise CorruptModel(detail, reason=reason) from None
            with f:
                try:
                    return file_identity(os.fstat(f.fileno())), decode(f)
                except DAMAGE as exc:
                    reason = damage_reason(exc)
                    detail = f"model {name!r} version {version} is corrupt: {reason}"
                    raise CorruptModel(detail, reason=reason) from None

    def _reading(self, name, version, read):
        """Return read(v) of version v (None: the latest, resolved again if it is deleted
        under the read: base.read_latest)."""
        return read_latest(version, lambda: read(self._resolve(name, version)))

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
