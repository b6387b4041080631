"""One way to print an accuracy: as a percentage that is never rounded up.

A model at 99.95% must not read 100%: the last digit is cut, not rounded (after removing the
float noise of fraction * 100, so 0.995 stays 99.5 and does not become 99.4).
"""

import math


def percent(fraction, digits=1):
    """Return fraction (0..1) as 'NN.N%' with digits decimals, truncated, never rounded up."""
    scale = 10 ** digits
    scaled = round(fraction * 100 * scale, 6)
    if not math.isfinite(scaled):  # no fraction (an uploaded file's 1e308): shown as it is
        return f"{fraction:.4g}"
    return f"{math.floor(scaled) / scale:.{digits}f}%"
