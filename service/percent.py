"""How pages print numbers: an accuracy as a percentage that is never rounded up, and any
number in a format of its own without failing on one past float's range.

A model at 99.95% must not read 100%: the last digit is cut, not rounded (after removing the
float noise of fraction * 100, so 0.995 stays 99.5 and does not become 99.4).
"""

import math


def percent(fraction, digits=1):
    """Return fraction (0..1) as 'NN.N%' with digits decimals, truncated, never rounded up."""
    scale = 10 ** digits
    try:
        value = float(fraction)
    except OverflowError:  # an integer past float's range (a row stored before uploads
        return "n/a"       # refused one, or written by hand)
    scaled = round(value * 100 * scale, 6)
    if not math.isfinite(scaled):  # no fraction (an uploaded file's 1e308): shown as it is
        return short(value)
    return f"{math.floor(scaled) / scale:.{digits}f}%"


def short(value, spec=".4g"):
    """Return value in spec ("n/a" for an integer past float's range: a number a row stored
    before uploads refused one may hold)."""
    try:
        return format(float(value), spec)
    except OverflowError:
        return "n/a"
