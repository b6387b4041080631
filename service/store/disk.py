"""Where model files live: safe names and versions, durable placement, OS errors."""

import contextlib
import errno
import fcntl
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
HIGH_WATER = ".highwater"  # in a model's folder: the highest version number it ever gave
LOCK = ".lock"  # in a model's folder: held while a version number is chosen
FIGURE_RE = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)  # a figure's key


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
    try:
        fsync_dir(directory)
    except FileNotFoundError:  # the model was deleted (its folder renamed away) meanwhile:
        return False  # the version went with it; the caller saves again, recreating the model
    return True


def reserve_version(root, name):
    """Return the next version number of model name, recorded first as its high-water mark
    (written atomically): one above both the mark and the highest version present, so a
    number is never given twice while the folder exists. Under the folder's lock, so the
    mark only grows. FileNotFoundError when the folder is gone (the model was deleted)."""
    directory = root / name
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        found = list_versions(root, name)
        version = max(read_high_water(directory), found[-1] if found else 0) + 1
        tmp = directory / f".tmp-{uuid.uuid4().hex}.mark"
        with open(tmp, "x") as f:
            f.write(str(version))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / HIGH_WATER)
        fsync_dir(directory)
        return version
    finally:
        os.close(fd)  # releases the lock


def read_high_water(directory):
    """Return the highest version number given in a model's folder (0: none or unreadable)."""
    try:
        return int((directory / HIGH_WATER).read_text()[:20])
    except (FileNotFoundError, ValueError):
        return 0


def figure_path(root, name, version, key):
    """Return where a version's figure under key is kept: hidden, beside the version."""
    if not FIGURE_RE.fullmatch(key):
        raise ValueError(f"bad figure key {key!r}")
    return root / name / f".fig-{version}-{key}.png"


def write_figure(path, png):
    """Put png at path atomically (a temp file renamed over it)."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}.png")
    try:
        with open(tmp, "xb") as f:
            f.write(png)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def delete_figures(directory, version):
    """Remove the figures kept for one version."""
    with os.scandir(directory) as entries:
        paths = [e.path for e in entries if e.name.startswith(f".fig-{version}-")]
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temps(directory):
    """Remove hidden temp files older than STALE_S from directory."""
    cutoff = time.time() - STALE_S
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)


def file_identity(st):
    return st.st_ino, st.st_mtime_ns, st.st_size


def list_versions(root, name):
    """Return the sorted version numbers of model name under root (empty when absent).

    Every entry named like a version counts, also one that is no file (a folder `3.npz`):
    reading it reports the version corrupt, so the list and a read of it agree."""
    with os_errors(f"read model {name!r}"):
        try:
            with os.scandir(root / name) as entries:
                return sorted(int(e.name[:-4]) for e in entries if VERSION_RE.fullmatch(e.name))
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
    """Remove one version file, its aliases and its figures. The folder stays, with its
    high-water mark: the name exists (with no version, it is not listed) and its numbers
    are not given again."""
    directory = root / name
    path = directory / f"{version}.npz"
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise ModelNotFound(name, version) from None
    except IsADirectoryError:  # a folder in a version's place: a corrupt version, deleted too
        trash = directory / f".trash-{uuid.uuid4().hex}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        remove_aliases_of(directory, version)
        fsync_dir(directory)
        delete_figures(directory, version)
        if not list_versions(root, name):
            remove_aliases_of(directory)  # none can point anywhere now
    except FileNotFoundError:
        if directory.exists():
            raise
        # the model's delete renamed the folder away meanwhile: nothing is left to tidy


def delete_model(root, name):
    """Remove a model's folder, its name and numbering with it: renamed first, so no
    half-deleted model is ever visible. ModelNotFound if it had no version (a folder left
    by deleting each version is removed all the same)."""
    had_versions = bool(list_versions(root, name))
    if not had_versions and not (root / name).is_dir():
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
    if not had_versions:
        raise ModelNotFound(name)
