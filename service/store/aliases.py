"""A file store's aliases: one hidden file per alias in the model's folder, its version inside.

``<root>/<name>/.alias-<alias>`` holds the version number as text. Each alias is its own
file, replaced atomically (os.replace), so two processes setting two aliases never lose
one another's; deleting a version or the whole model takes its aliases with it. Every
function works through an open descriptor of the model's folder (disk.open_folder), so
it stays in that folder even when a model delete renames it away meanwhile.
"""

import contextlib
import os
import uuid

from ..names import NAME_RE

PREFIX = ".alias-"


def read_aliases(folder):
    """Return {alias: version} of the alias files in the folder (fd)."""
    found = {}
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX)]
    except FileNotFoundError:  # the folder was deleted meanwhile
        return found
    for filename in names:
        alias = filename[len(PREFIX):]
        try:
            fd = os.open(filename, os.O_RDONLY, dir_fd=folder)
            with open(fd, "rb") as f:
                text = f.read(32).decode("ascii").strip()
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
            continue  # removed meanwhile, or damaged: not an alias
        if NAME_RE.fullmatch(alias) and text.isdigit():
            found[alias] = int(text)
    return dict(sorted(found.items()))


def write_alias(folder, alias, version):
    """Point alias at version durably: a temp file, fsynced, renamed over the alias file."""
    tmp = f".tmp-{uuid.uuid4().hex}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder)
        with open(fd, "w", encoding="ascii") as f:
            f.write(f"{version}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, PREFIX + alias, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
    os.fsync(folder)


def remove_alias(folder, alias):
    """Remove an alias file durably; return False if there was none."""
    try:
        os.unlink(PREFIX + alias, dir_fd=folder)
    except FileNotFoundError:
        return False
    os.fsync(folder)
    return True


def remove_aliases_of(folder, version=None):
    """Remove the aliases pointing at version (None: every alias)."""
    for alias, target in read_aliases(folder).items():
        if version is None or target == version:
            remove_alias(folder, alias)
