"""What an uploaded version's metadata may hold: its history thinned to the rows a trained
model keeps (nn/history.py), and every field bounded in size, so no upload makes each read
of its version cost megabytes."""

import json

from ..errors import InvalidModelFile
from ..nn.history import thin_history

# JSON bytes of each field once thinned; a trained model's history (5 columns of 1001 rows,
# 16 starts' probes) is about 130 KB, its other fields under 1 KB each.
MAX_HISTORY_BYTES = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024


def bounded_meta(meta):
    """Return the known fields of an uploaded meta with its history thinned; InvalidModelFile
    (422) naming the field when one is over its bound or a history column is not a list."""
    history = meta["history"]
    for column, values in history.items():
        if type(values) is not list:
            _refuse(("history", column), f"meta history column {column[:40]!r} is not a list")
    meta = {**meta, "history": thin_history(history)}
    for field, value in meta.items():
        size = len(json.dumps(value))
        maximum = MAX_HISTORY_BYTES if field == "history" else MAX_FIELD_BYTES
        if size > maximum:
            _refuse((field,), f"meta field {field!r} is {size} bytes of JSON"
                              f"{' once thinned' if field == 'history' else ''}, "
                              f"over the limit of {maximum}")
    return meta


def _refuse(field, reason):
    raise InvalidModelFile(f"uploaded model file is invalid: {reason}", reason=reason,
                           field=("meta", *field))
