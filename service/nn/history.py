"""Learning curves kept to a bounded number of rows, evenly spread over the epochs.

A history is one list per column ({"epoch": [...], "loss": [...], "accuracy": [...]}), one
row per measured epoch. Every history nnserve keeps (a fit's, a running job's, a stored
version's) is bounded by the same rule: every stride-th row from the first, and the last.
"""

import math

MAX_ROWS = 1000


def stride(count, max_rows=MAX_ROWS):
    """Return k such that every k-th of count rows, and the last, are at most max_rows + 1."""
    return max(1, math.ceil(count / max_rows))


def thin(values, max_rows=MAX_ROWS):
    """Return the list of values cut to every stride-th row from the first, and the last."""
    values = list(values)
    if len(values) <= max_rows + 1:
        return values
    kept = values[:-1:stride(len(values) - 1, max_rows)]
    return [*kept, values[-1]]


def thin_history(history, max_rows=MAX_ROWS):
    """Return a history with each column thinned by thin()."""
    return {key: thin(values, max_rows) for key, values in history.items()}
