"""The one timestamp format of every record: UTC ISO 8601 to the millisecond."""

import time
from datetime import UTC, datetime


def utc_iso(t=None):
    """Return time t (default now, seconds since the epoch) as fixed-width UTC ISO 8601, so
    that the strings sort as the times do."""
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
