"""What an uploaded version's metadata may hold: its history thinned to the rows a trained
model keeps (nn/history.py), and every field bounded in size, so no upload makes each read
of its version cost megabytes."""

import json
import sys

from ..errors import InvalidModelFile
from ..nn.history import thin_history

# JSON bytes of each field once thinned; a trained model's history (5 columns of 1001 rows,
# 16 starts' probes) is about 130 KB, its other fields under 1 KB each.
MAX_HISTORY_BYTES = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024
# Levels of a history column: a trained model's "probes" is a list of objects of lists of
# numbers (3); a column served 900 levels deep broke clients' JSON parsers (Ruby's: 100)
MAX_COLUMN_DEPTH = 4
FRACTIONS = ("accuracy", "validation_accuracy")  # metrics the pages show as percentages
MAX_FLOAT_INT = int(sys.float_info.max)


def bounded_meta(meta):
    """Return the known fields of an uploaded meta with its history thinned; InvalidModelFile
    (422) naming the field when one is over its bound or a history column is not a list."""
    history = meta["history"]
    for column, values in history.items():
        if type(values) is not list:
            _refuse(("history", column), f"meta history column {column[:40]!r} is not a list")
        if _depth(values) > MAX_COLUMN_DEPTH:
            _refuse(("history", column), f"meta history column {column[:40]!r} nests deeper "
                                         f"than {MAX_COLUMN_DEPTH} levels")
    meta = {**meta, "history": thin_history(history)}
    for field, value in meta.items():
        if not _plain_text(value):
            _refuse((field,), f"meta field {field!r} holds a NUL or a lone surrogate (not "
                              "text every store can keep)")
        if field == "metrics":
            _check_metrics(value)
        size = len(json.dumps(value))
        maximum = MAX_HISTORY_BYTES if field == "history" else MAX_FIELD_BYTES
        if size > maximum:
            _refuse((field,), f"meta field {field!r} is {size} bytes of JSON"
                              f"{' once thinned' if field == 'history' else ''}, "
                              f"over the limit of {maximum}")
    return meta


def _depth(value):
    """Return how deep lists and objects nest in a JSON value (a number: 0)."""
    deepest, stack = 0, [(value, 1)]  # no recursion: the parser allowed any depth
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                                  else value))
    return deepest


def _plain_text(value):
    """Return whether every string (and key) in a JSON value is UTF-8 text without NUL, as
    PostgreSQL's json and jsonb keep it."""
    stack = [value]  # no recursion: a meta may nest as deep as its JSON parser allowed
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON)
                return False
            if "\x00" in value:
                return False
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _check_metrics(metrics):
    """Refuse a metric that is a number no float holds (10**400): every reader formats
    metrics as floats; and an accuracy that is a number but no fraction (0 to 1)."""
    for key, value in metrics.items():
        if type(value) is int and abs(value) > MAX_FLOAT_INT:
            _refuse(("metrics", key), f"meta metric {key[:40]!r} is beyond a float's range")
        if key in FRACTIONS and type(value) in (int, float) and not 0 <= value <= 1:
            _refuse(("metrics", key), f"meta metric {key!r} is {value:.4g}, not within 0 to 1")


def _refuse(field, reason):
    raise InvalidModelFile(f"uploaded model file is invalid: {reason}", reason=reason,
                           field=("meta", *field))
