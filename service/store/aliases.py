"""A file store's aliases: one hidden file per alias in the model's folder, its version inside.

``<root>/<name>/.alias-<alias>`` holds the version number as text. Each alias is its own
file, replaced atomically (os.replace), so two processes setting two aliases never lose
one another's; deleting a version or the whole model takes its aliases with it. Every
function works through an open descriptor of the model's folder (disk.open_folder), so
it stays in that folder even when a model delete renames it away meanwhile.
"""

import os

from ..names import NAME_RE
from .atomic import replace_file

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
    """Point alias at version durably (its file replaced whole)."""
    replace_file(folder, PREFIX + alias, f"{version}\n".encode("ascii"))


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
