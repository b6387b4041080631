"""What a model is called: the one name pattern, and the range of version numbers."""

import re

from .errors import InvalidInput, InvalidName

# The first character excludes ".", "..", hidden names and "-options"; ASCII only: a name is
# also one safe path component.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN.strip("^$"), re.ASCII)
MAX_VERSION = 10**18 - 1  # 18 digits: fits a file name and a PostgreSQL bigint


def check_name(name):
    """Return name if it matches NAME_PATTERN; else raise InvalidName."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name[:70]) if isinstance(name, str) else f"of type {type(name).__name__}"
        raise InvalidName(
            f"invalid model name {shown}: use 1 to 64 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


def check_version(version):
    """Return version if it is an int from 1 to MAX_VERSION (bool excluded); else raise
    InvalidInput."""
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise InvalidInput(f"version must be an integer from 1 to {MAX_VERSION}, "
                           f"got {version!r:.40}", ("version",))
    return version


def check_alias(alias):
    """Return alias if it matches NAME_PATTERN (an alias is named as a model is); else raise
    InvalidInput naming the alias."""
    if not isinstance(alias, str) or not NAME_RE.fullmatch(alias):
        shown = repr(alias[:70]) if isinstance(alias, str) else f"of type {type(alias).__name__}"
        raise InvalidInput(f"invalid alias {shown}: use 1 to 64 of a-z, 0-9, '.', '_', '-', "
                           "starting with a letter or digit", ("alias",))
    return alias
