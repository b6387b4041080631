"""What the measured epochs of a stack's networks decide and keep: stops, best epochs, curves.

Both hold one entry per network as arrays, so that a measured epoch of many networks costs
a few NumPy calls, not a Python loop over them.
"""

import math

import numpy as np

NO_STOP = 2**62  # patience of a network without one
REASONS = ("", "diverged", "target_accuracy", "tolerance", "patience")
METRICS = ("loss", "accuracy", "validation_loss", "validation_accuracy")


class Rules:
    """Each network's stop conditions, its best monitored loss and the epoch it was met.

    Only the conditions some network has are evaluated: a measured epoch of a fit that
    watches one thing costs a few NumPy calls."""

    def __init__(self, configs):
        self.target = np.array([_or(c.target_accuracy, math.inf) for c in configs])
        self.tolerance = np.array([_or(c.tolerance, -math.inf) for c in configs])
        self.patience = np.array([_or(c.patience, NO_STOP) for c in configs])
        self.restores = np.array([c.restores() for c in configs])
        self.best = np.full(len(configs), math.inf)
        self.best_epoch = np.zeros(len(configs), np.int64)
        self.since = np.zeros(len(configs), np.int64)
        self.checks = [name for name, unset in (
            ("target", math.inf), ("tolerance", -math.inf), ("patience", NO_STOP))
            if (getattr(self, name) != unset).any()]
        self.tracks_best = "patience" in self.checks or self.restores.any()

    def keep(self, rows):
        """Keep the entries of the networks numbered rows, in that order."""
        for name in ("target", "tolerance", "patience", "restores", "best", "best_epoch", "since"):
            setattr(self, name, getattr(self, name)[rows])

    def observe(self, epoch, loss, accuracy, watched):
        """Return (reason codes, an index into REASONS per network, or None when no network
        stops; which networks' watched (monitored) loss improved, or None if not tracked).

        Divergence first, then target accuracy, then the loss tolerance, then patience on
        the watched loss, as one stopper would decide them in turn."""
        improved = None
        if self.tracks_best:
            improved = watched < self.best
            np.copyto(self.best, watched, where=improved)
            np.copyto(self.best_epoch, epoch, where=improved)
            np.add(self.since, 1, self.since)
            np.copyto(self.since, 0, where=improved)
        finite = np.isfinite(loss) if watched is loss else np.isfinite(loss) & np.isfinite(watched)
        hits = [(1, ~finite)]
        if "target" in self.checks and accuracy is not None:
            hits.append((2, accuracy >= self.target))
        if "tolerance" in self.checks:
            hits.append((3, loss < self.tolerance))
        if "patience" in self.checks:
            hits.append((4, self.since >= self.patience))
        stop = hits[0][1]
        for _, hit in hits[1:]:
            stop = stop | hit
        if not stop.any():
            return None, improved
        code = np.zeros(len(loss), np.int64)
        for value, hit in reversed(hits):  # the first condition that holds wins
            code[hit] = value
        return code, improved


def _or(value, default):
    return default if value is None else value


class Curves:
    """Every network's learning curve: the metrics of each recorded epoch, by network id.

    A record keeps the arrays as measured; they become one table per metric when first read,
    a row per network, filled a stack's run of records at a time (a sweep reads 320 curves)."""

    def __init__(self, networks, keys):
        self.networks, self.keys, self.rows, self._table = networks, keys, [], None

    def record(self, epoch, ids, metrics):
        """Record the metrics ({key: (m,) array or None}) of the networks ids at epoch."""
        self.rows.append((epoch, ids, [metrics[key] for key in self.keys]))

    def table(self):
        """Return (epochs, alive, {key: (networks, rows) values, NaN where not measured})."""
        if self._table is None:
            shape = (self.networks, len(self.rows))
            alive = np.zeros(shape, bool)
            values = {key: np.full(shape, math.nan) for key in self.keys}
            for start, stop in self._runs():
                ids, rows = self.rows[start][1], self.rows[start:stop]
                alive[ids, start:stop] = True
                gap = np.full(len(ids), math.nan)
                for j, key in enumerate(self.keys):
                    measured = [gap if row[2][j] is None else row[2][j] for row in rows]
                    values[key][ids, start:stop] = np.array(measured).T
            self._table = np.array([row[0] for row in self.rows], np.int64), alive, values
        return self._table

    def _runs(self):
        """Yield (start, stop): the runs of records of the same networks (one stack's)."""
        start = 0
        for r in range(1, len(self.rows) + 1):
            if r == len(self.rows) or self.rows[r][1] is not self.rows[start][1]:
                yield start, r
                start = r

    def of(self, network, max_rows=None, until=None, keys=None):
        """Return {"epoch": [...], key: [...]} of one network (None where not measured) for
        keys (default: all), before epoch until, every k-th row kept within max_rows."""
        epochs, alive, values = self.table()
        rows = np.flatnonzero(alive[network])
        if until is not None:
            rows = rows[epochs[rows] < until]
        if max_rows is not None and len(rows) > max_rows:
            rows = rows[:: -(-len(rows) // max_rows)]
        curve = {"epoch": epochs[rows].tolist()}
        for key in self.keys if keys is None else keys:
            column = values[key][network, rows]
            gaps = np.isnan(column)
            curve[key] = column.tolist() if not gaps.any() else [
                None if gap else v for gap, v in zip(gaps.tolist(), column.tolist(), strict=True)]
        return curve
