"""The lab's data sets, two harder playground sets, and checked user points.

Every function returns ``(x, y)``: ``x: (n, 2)`` float64 points and
``y: (n,)`` float64 labels in {0, 1}.
"""

import math

import numpy as np

# Far beyond any data set of the unit square, and far below where float32 or a product of
# weights would overflow.
MAX_COORDINATE = 1e6
PAIRS, NUMBERS = (list, tuple), (float, int)  # check_rows' plain forms (bool is not an int here)
SPLIT_STREAM = 0x5B117  # hold_out's generator: the data set's seed, and this


def linear(n=100, seed=0):
    """Return n uniform points of the unit square; label 0 when x1 > x2, else 1."""
    x = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 2))
    return x, (x[:, 0] <= x[:, 1]).astype(np.float64)


def xor():
    """Return the lab's 21 XOR points: the diagonal is 0, the anti-diagonal 1 (but its centre)."""
    points, labels = [], []
    for i in range(11):
        points.append((0.1 * i, 0.1 * i))
        labels.append(0.0)
        if i == 5:
            continue
        points.append((0.1 * i, 1.0 - 0.1 * i))
        labels.append(1.0)
    return np.array(points), np.array(labels)


def circle(n=200, noise=0.05, seed=0):
    """Return a disc (label 1) inside a ring (label 0), centred in the unit square."""
    rng = np.random.default_rng(seed)
    inner = np.arange(n) < n // 2
    radius = np.where(inner, rng.uniform(0.0, 0.2, n), rng.uniform(0.3, 0.45, n))
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    x = 0.5 + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    x += rng.normal(0.0, noise, size=x.shape)
    return x, inner.astype(np.float64)


def spiral(n=200, noise=0.05, seed=0):
    """Return two interleaved spirals (labels 0 and 1), centred in the unit square."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 2).astype(np.float64)
    t = rng.uniform(0.0, 1.0, n)
    angle = 3.0 * math.pi * t + math.pi * label
    radius = 0.05 + 0.4 * t
    x = 0.5 + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    x += rng.normal(0.0, noise, size=x.shape)
    return x, label


def hold_out(y, fraction, seed=0):
    """Return (train, held): sorted row indices, a fraction of each class of labels y held out.

    The rows are drawn with the data set's seed (from a stream of their own, not the one
    that drew the points), fraction * n_c of each class c rounded half up, and at least one point
    of each class stays on each side: a class of fewer than 2 points raises ValueError."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng, held = np.random.default_rng([seed, SPLIT_STREAM]), []
    for label in (0.0, 1.0):
        rows = np.flatnonzero(y == label)
        if len(rows) < 2:
            raise ValueError(f"a validation split needs at least 2 points of each class; "
                             f"class {label:g} has {len(rows)}")
        count = min(max(1, math.floor(fraction * len(rows) + 0.5)), len(rows) - 1)
        held.append(rng.choice(rows, count, replace=False))
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(y)), held), held


def check_points(x):
    """Return x as a float64 (n, 2) array; raise ValueError unless it is 2-D points in range."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"points must have shape (n, 2) with n >= 1, got {x.shape}")
    if not np.abs(x).max() <= MAX_COORDINATE:  # one test for NaN, infinities and range
        if not np.isfinite(x).all():
            raise ValueError("points must be finite numbers (no NaN or infinity)")
        raise ValueError(f"point coordinates must be within +-{MAX_COORDINATE:g}")
    return x


def check_rows(points):
    """Return points as a list of (x1, x2) floats, by check_points' rules.

    A list of pairs of Python numbers in range is checked here, without NumPy's calls;
    anything else goes through check_points, which accepts it or raises its ValueError."""
    if isinstance(points, list) and points and all(
        type(p) in PAIRS and len(p) == 2 and type(p[0]) in NUMBERS and type(p[1]) in NUMBERS
        and abs(p[0]) <= MAX_COORDINATE and abs(p[1]) <= MAX_COORDINATE for p in points
    ):
        return [(float(x1), float(x2)) for x1, x2 in points]
    return list(map(tuple, check_points(points).tolist()))


def check_dataset(x, y):
    """Return (x, y) as float64 arrays; raise ValueError if they cannot train a classifier."""
    x = check_points(x)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    if np.all(y == y[0]):
        raise ValueError("the data set has a single class; it needs both 0 and 1")
    return x, y


DATASETS = {"linear": linear, "xor": xor, "circle": circle, "spiral": spiral}
