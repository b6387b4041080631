"""Where model files live: safe names and versions, durable placement, OS errors."""

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import time
import uuid

from ..errors import ModelNotFound, StoreFull, StoreUnavailable
from ..names import NAME_RE
from .aliases import remove_aliases_of
from .atomic import replace_file
from .base import MAX_FIGURES
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


@contextlib.contextmanager
def open_folder(directory):
    """Yield a descriptor of a model's folder (FileNotFoundError when there is none). What
    is done through it stays in that folder even when a model delete renames it away
    meanwhile and a save makes a new folder of the name: such a late change lands in the
    tombstone, as if it had come just before the delete."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder):
    """Hold the lock of the folder (fd): version numbers are chosen, versions deleted and
    aliases changed under it, one process at a time."""
    try:  # flock needs no write access: a read-only store still answers its 404s
        fd = os.open(LOCK, os.O_RDONLY, dir_fd=folder)
    except FileNotFoundError:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644, dir_fd=folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def locked_folder(directory):
    """Yield a descriptor of a model's folder (open_folder) while holding its lock."""
    with open_folder(directory) as folder, folder_lock(folder):
        yield folder


def still_at(directory, folder):
    """Return whether the folder (fd) is still the one at directory (no delete renamed it)."""
    try:
        return os.stat(directory).st_ino == os.fstat(folder).st_ino
    except FileNotFoundError:
        return False


def place(directory, folder, arrays, meta, x, y, before_link=None):
    """Return True once the file is durably in place as meta's version, False if it is taken.
    Linked by path: a delete that renamed the folder (fd) whose numbering gave the version
    either came after the link (the version went with it, as a later delete takes it) or
    before (it lands in the folder a save made anew, whose mark is then raised to cover
    it, so that its number is not given twice there). before_link() is called once the
    file is written, just before it is linked: a job's fence, whose lease a worker paused
    while writing may have lost (its raise leaves no version)."""
    tmp = directory / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        write_file(tmp, arrays, meta, x, y)
        if before_link is not None:
            before_link()
        os.link(tmp, directory / f"{meta['version']}.npz")  # fails, never overwrites, if taken
    except (FileExistsError, FileNotFoundError):  # taken, or the directory was just deleted
        return False
    finally:
        tmp.unlink(missing_ok=True)
    try:
        fsync_dir(directory)
    except FileNotFoundError:  # the model was deleted (its folder renamed away) meanwhile:
        return False  # the version went with it; the caller saves again, recreating the model
    if not still_at(directory, folder):
        cover_version(directory, meta["version"])
    return True


def cover_version(directory, version):
    """Raise the high-water mark of the folder now at directory to version at least."""
    with contextlib.suppress(FileNotFoundError), locked_folder(directory) as folder:
        if read_high_water(folder) < version:
            write_high_water(folder, version)


def reserve_version(directory, folder):
    """Return the next version number of the model whose folder (fd, at directory) is
    given, recorded first as its high-water mark (written atomically): one above both the
    mark and the highest version present, so a number is never given twice while the
    folder exists. Under the folder's lock, so the mark only grows; FileNotFoundError when
    the folder is no longer at directory once the lock is held (a delete renamed it away:
    its numbering is not the name's any more)."""
    with folder_lock(folder):
        if not still_at(directory, folder):
            raise FileNotFoundError(errno.ENOENT, "the model's folder was deleted", directory)
        found = folder_versions(folder)
        version = max(read_high_water(folder), found[-1] if found else 0) + 1
        write_high_water(folder, version)
        return version


def write_high_water(folder, version):
    """Record version as the folder's (fd) high-water mark, atomically and durably."""
    replace_file(folder, HIGH_WATER, str(version).encode("ascii"))


def read_high_water(folder):
    """Return the highest version number given in a model's folder (fd; 0: none or
    unreadable)."""
    try:
        fd = os.open(HIGH_WATER, os.O_RDONLY, dir_fd=folder)
    except FileNotFoundError:
        return 0
    with open(fd) as f:
        try:
            return int(f.read(20))
        except ValueError:
            return 0


def figure_path(root, name, version, key):
    """Return where a version's figure under key is kept: hidden, beside the version."""
    if not FIGURE_RE.fullmatch(key):
        raise ValueError(f"bad figure key {key!r}")
    return root / name / f".fig-{version}-{key}.png"


def write_figure(directory, version, key, png):
    """Put png beside a version as its figure under key, atomically (a temp file, synced,
    renamed over it: a figure is served as it is found, so a torn one must never be); under
    the folder's lock and only while the version is there (a delete removes its figures
    under the lock too, so none is left behind). Return whether it was kept."""
    filename = figure_path(directory.parent, directory.name, version, key).name
    with locked_folder(directory) as folder:
        try:
            if not stat.S_ISREG(os.stat(f"{version}.npz", dir_fd=folder).st_mode):
                return False  # a folder in the version's place: corrupt, never drawn
        except FileNotFoundError:
            return False
        replace_file(folder, filename, png)
        _drop_old_figures(folder, version)
        return True


def _drop_old_figures(folder, version):
    """Remove the version's oldest figures beyond MAX_FIGURES (under the folder's lock)."""
    with os.scandir(folder) as entries:
        kept = [(e.stat().st_mtime_ns, e.name) for e in entries
                if e.name.startswith(f".fig-{version}-")]
    for _, name in sorted(kept)[:-MAX_FIGURES]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)


def delete_figures(folder, version):
    """Remove the figures kept for one version in the folder (fd)."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.name.startswith(f".fig-{version}-")]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)


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


def folder_versions(folder):
    """Return the sorted version numbers in a model's folder (fd), as list_versions."""
    try:
        with os.scandir(folder) as entries:
            return _version_numbers(entries)
    except FileNotFoundError:  # deleted meanwhile
        return []


def _version_numbers(entries):
    return sorted(int(e.name[:-4]) for e in entries if VERSION_RE.fullmatch(e.name))


def list_versions(root, name):
    """Return the sorted version numbers of model name under root (empty when absent).

    Every entry named like a version counts, also one that is no file (a folder `3.npz`):
    reading it reports the version corrupt, so the list and a read of it agree."""
    with os_errors(f"read model {name!r}"):
        try:
            with os.scandir(root / name) as entries:
                return _version_numbers(entries)
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
    """Remove one version file, its aliases and its figures, under the folder's lock (so an
    alias set meanwhile is either removed with it or refused). The folder stays, with its
    high-water mark: the name exists (with no version, it is not listed) and its numbers
    are not given again."""
    try:
        with locked_folder(root / name) as folder:
            _delete_version(folder, name, version)
    except (FileNotFoundError, NotADirectoryError):  # no such model (or deleted meanwhile)
        raise ModelNotFound(name, version) from None


def _delete_version(folder, name, version):
    filename = f"{version}.npz"
    try:
        os.unlink(filename, dir_fd=folder)
    except FileNotFoundError:
        raise ModelNotFound(name, version) from None
    except IsADirectoryError:  # a folder in a version's place: a corrupt version, deleted too
        trash = f".trash-{uuid.uuid4().hex}"
        os.rename(filename, trash, src_dir_fd=folder, dst_dir_fd=folder)
        shutil.rmtree(trash, ignore_errors=True, dir_fd=folder)
    with contextlib.suppress(FileNotFoundError):  # the model's delete removed the folder
        remove_aliases_of(folder, version)
        os.fsync(folder)
        delete_figures(folder, version)
        if not folder_versions(folder):
            remove_aliases_of(folder)  # none can point anywhere now


def delete_model(root, name):
    """Remove a model's folder, its name and numbering with it: renamed first, so no
    half-deleted model is ever visible. ModelNotFound if it had no version when renamed
    (a folder left by deleting each version is removed all the same), or if another
    delete took it first.

    The folder's lock is held from before the rename until the tombstone is gone, so a
    delete of another model, clearing tombstones left by killed deletes, skips this one
    (it took a tombstone still being counted, and that delete answered 404)."""
    tombstone = root / f".trash-{uuid.uuid4().hex}"
    try:
        with locked_folder(root / name) as folder:
            if not still_at(root / name, folder):  # another delete renamed it meanwhile
                raise ModelNotFound(name)
            os.rename(root / name, tombstone)
            with os.scandir(folder) as entries:  # counted once it is out of reach
                had_versions = bool(_version_numbers(entries))
            fsync_dir(root)
            shutil.rmtree(tombstone, ignore_errors=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ModelNotFound(name) from None
    _clear_tombstones(root)
    if not had_versions:
        raise ModelNotFound(name)


def _clear_tombstones(root):
    """Remove the tombstones of deletes that were killed half-way: those whose lock nobody
    holds (a delete in progress holds its own)."""
    with os.scandir(root) as entries:
        tombstones = [e.path for e in entries if e.name.startswith(".trash-")]
    for path in tombstones:
        try:
            with open_folder(path) as folder:
                lock = os.open(LOCK, os.O_RDONLY, dir_fd=folder)
        except (FileNotFoundError, NotADirectoryError):  # gone, or no lock ever taken
            shutil.rmtree(path, ignore_errors=True)
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a delete in progress
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(lock)
