"""A file store's aliases: one hidden file per alias in the model's folder, its version inside.

``<root>/<name>/.alias-<alias>`` holds the version number as text. Each alias is its own
file, replaced atomically (os.replace), so two processes setting two aliases never lose
one another's; deleting a version or the whole model takes its aliases with it.
"""

import contextlib
import os
import uuid

from ..names import NAME_RE

PREFIX = ".alias-"


def read_aliases(directory):
    """Return {alias: version} of the alias files in directory (empty when there is none)."""
    found = {}
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return found
    for filename in names:
        alias = filename[len(PREFIX):]
        try:
            with open(os.path.join(directory, filename), "rb") as f:
                text = f.read(32).decode("ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            continue  # removed meanwhile, or damaged: not an alias
        if NAME_RE.fullmatch(alias) and text.isdigit():
            found[alias] = int(text)
    return dict(sorted(found.items()))


def write_alias(directory, alias, version, fsync_dir):
    """Point alias at version durably: a temp file, fsynced, renamed over the alias file."""
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "x", encoding="ascii") as f:
            f.write(f"{version}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, PREFIX + alias))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(directory)


def remove_alias(directory, alias):
    """Remove an alias file; return False if there was none."""
    try:
        os.unlink(os.path.join(directory, PREFIX + alias))
    except FileNotFoundError:
        return False
    return True


def remove_aliases_of(directory, version=None):
    """Remove the aliases pointing at version (None: every alias)."""
    for alias, target in read_aliases(directory).items():
        if version is None or target == version:
            remove_alias(directory, alias)
