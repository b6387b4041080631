"""What every section shares: the plans, the clocks, side-by-side repeats and the result rows.

In-process figures are process CPU time (``time.process_time``) with NumPy's BLAS and
PyTorch held to one thread: on a shared two-core machine other work inflates wall time
but not the CPU time of the work measured. HTTP figures are wall time, client-side.
"""

import contextlib
import importlib.util
import math
import statistics
import time
from dataclasses import dataclass, field

cpu_clock = time.process_time
wall_clock = time.perf_counter


@dataclass(frozen=True)
class Plan:
    """How much work each section does: full (make bench), quick (--quick) or smoke (tests)."""

    name: str
    repeats: int = 5
    epochs: int = 10_000  # same-work training comparison
    sweep_epochs: int = 2000  # each trial of the batched sweep
    seeds: int = 100  # time to 100% and the convergence check
    generalisation_seeds: int = 40  # data seeds of linear(100) scored on fresh points
    sizes: tuple[int, ...] = (10**3, 10**4, 10**5, 10**6)
    size_work: int = 4 * 10**6  # points x epochs per scaling measurement (at least 2 epochs)
    batch1_epochs: int = 20  # of linear(100) with batch_size 1
    memory_points: int = 10**6
    store_calls: int = 2000
    http_seconds: float = 5.0  # per load run; each endpoint runs `http_repeats` times
    http_repeats: int = 9  # load runs per endpoint, side by side (the ratio is paired)
    http_samples: int = 200  # sequential requests per size for the point-count comparison
    big_points: int = 100_000
    host_trials: int = 40  # versions saved on one host and awaited on another
    peers: str = "required"  # "required", or "auto": skipped when not installed
    load_generator: str = "auto"  # "auto": wrk when installed, else the Python client


FULL = Plan("full")
QUICK = Plan("quick", repeats=3, epochs=2000, seeds=20, generalisation_seeds=10,
             sizes=(10**3, 10**4, 10**5, 10**6), size_work=10**6, batch1_epochs=5,
             store_calls=500, http_seconds=2.0, http_repeats=5, http_samples=60, host_trials=15)
SMOKE = Plan("smoke", repeats=2, epochs=30, sweep_epochs=20, seeds=2, generalisation_seeds=2,
             sizes=(10**2, 10**3), size_work=10**4, batch1_epochs=1, memory_points=10**4,
             store_calls=20, http_seconds=0.3, http_repeats=2, http_samples=5, big_points=1000,
             host_trials=3,
             peers="auto", load_generator="python")


@dataclass
class Row:
    """One line of the table: a figure with its spread, a ratio, a target and a verdict."""

    section: str
    name: str
    value: float | None
    unit: str
    low: float | None = None
    high: float | None = None
    ratio: str = ""
    target: str = ""
    ok: bool | None = None  # None: recorded, no target
    note: str = ""

    @property
    def verdict(self):
        return {True: "met", False: "MISSED", None: ""}[self.ok]


@dataclass
class Timings:
    """Seconds of each repeat of one contender."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.seconds)

    def row(self, section, name, scale, unit, **kwargs):
        """Return the Row of these timings, each multiplied by scale (e.g. 1e6 / epochs)."""
        return Row(section, name, self.median * scale, unit, min(self.seconds) * scale,
                   max(self.seconds) * scale, **kwargs)


def side_by_side(contenders, repeats, clock=cpu_clock):
    """Return {name: Timings}: each repeat runs every contender once, in a rotating order."""
    names = list(contenders)
    timings = {name: Timings() for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            started = clock()
            contenders[name]()
            timings[name].seconds.append(clock() - started)
    return timings


def percentile(values, q):
    """Return the q-th percentile (0..100) of values, nearest rank; inf stays inf."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def at_least(value, target):
    """Return the verdict fields of "value >= target": the note says how far it fell short."""
    ok = value >= target
    short = f"short by {target / value:.2f}x" if value > 0 else "none at all"
    return {"ok": ok, "note": "" if ok else short}


def at_most(value, target):
    """Return the verdict fields of "value <= target": the note says how far it went over."""
    ok = value <= target
    over = f"over by {value / target:.2f}x" if math.isfinite(value) else "never got there"
    return {"ok": ok, "note": "" if ok else over}


def has(module):
    """Return True when module can be imported."""
    return importlib.util.find_spec(module) is not None


def need_peers(plan, *modules):
    """Return True when the peers can run; raise when a full plan lacks them."""
    missing = [m for m in modules if not has(m)]
    if missing and plan.peers == "required":
        raise SystemExit(f"benchmarks need {', '.join(missing)}: pip install -e '.[bench]'")
    return not missing


@contextlib.contextmanager
def one_thread():
    """Hold NumPy's BLAS (and OpenMP) to one thread when threadpoolctl is installed."""
    if not has("threadpoolctl"):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
