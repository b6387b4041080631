"""Where model files live: safe names and versions, durable placement, OS errors."""

import contextlib
import errno
import os
import re
import shutil
import time
import uuid

from ..errors import ModelNotFound, StoreFull, StoreUnavailable
from ..names import NAME_RE
from .aliases import remove_aliases_of
from .npzfile import write_file

VERSION_RE = re.compile(r"[1-9][0-9]{0,17}\.npz", re.ASCII)  # up to names.MAX_VERSION
STALE_S = 3600.0  # hidden temp files older than this are debris of killed writers


def map_os_error(exc, action):
    """Return the domain error for an OSError met while doing action: full (507) or else
    unavailable (503: read-only, no permission, a file where a folder should be, I/O errors).

    The message names the action but never a path: it reaches HTTP clients."""
    why = os.strerror(exc.errno) if exc.errno else "unknown error"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"cannot {action}: model store is full ({why})")
    return StoreUnavailable(f"cannot {action}: model store unavailable ({why})")


@contextlib.contextmanager
def os_errors(action):
    try:
        yield
    except OSError as exc:
        raise map_os_error(exc, action) from exc


def place(directory, arrays, meta, x, y):
    """Return True once the file is durably in place as meta's version, False if it is taken."""
    tmp = directory / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        write_file(tmp, arrays, meta, x, y)
        os.link(tmp, directory / f"{meta['version']}.npz")  # fails, never overwrites, if taken
    except (FileExistsError, FileNotFoundError):  # taken, or the directory was just deleted
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(directory)
    return True


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temps(directory):
    """Remove hidden temp files older than STALE_S from directory."""
    cutoff = time.time() - STALE_S
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)


def file_identity(st):
    return st.st_ino, st.st_mtime_ns, st.st_size


def list_versions(root, name):
    """Return the sorted version numbers of model name under root (empty when absent)."""
    with os_errors(f"read model {name!r}"):
        try:
            with os.scandir(root / name) as entries:
                return sorted(int(e.name[:-4]) for e in entries
                              if VERSION_RE.fullmatch(e.name) and e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []


def list_names(root):
    """Return the sorted model names under root: folders with a valid name, hidden ones not."""
    with os_errors("list models"):
        try:
            with os.scandir(root) as entries:
                return sorted(e.name for e in entries if NAME_RE.fullmatch(e.name) and e.is_dir())
        except FileNotFoundError:
            return []


def delete_version(root, name, version):
    """Remove one version file and its aliases, and the model's folder once it is empty."""
    directory = root / name
    try:
        os.unlink(directory / f"{version}.npz")
    except FileNotFoundError:
        raise ModelNotFound(name, version) from None
    remove_aliases_of(directory, version)
    fsync_dir(directory)
    if not list_versions(root, name):
        remove_aliases_of(directory)  # none can point anywhere now
        with contextlib.suppress(OSError):  # a concurrent save may have refilled it
            directory.rmdir()


def delete_model(root, name):
    """Remove a model's folder: renamed first, so no half-deleted model is ever visible."""
    if not list_versions(root, name):
        raise ModelNotFound(name)
    try:
        os.rename(root / name, root / f".trash-{uuid.uuid4().hex}")
    except FileNotFoundError:
        raise ModelNotFound(name) from None
    fsync_dir(root)
    with os.scandir(root) as entries:  # also tombstones left by killed deletes
        tombstones = [e.path for e in entries if e.name.startswith(".trash-")]
    for path in tombstones:
        shutil.rmtree(path, ignore_errors=True)
