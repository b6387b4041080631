"""Time to 100% training accuracy with the defaults, and how reliably the defaults converge.

Seed s trains on XOR or on linear(100, s) with network seed s. Time to 100% uses
TrainingConfig(target_accuracy=1.0); a run that never gets there counts as infinite.
scikit-learn's default MLPClassifier is timed beside it on the same sets (its own
stopping rule; "reached" says how often it ended at 100%). The convergence check runs
the defaults to the end, and scores the linear models on held-out linear(1000).
"""

import math
import statistics
import warnings

import numpy as np

from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig, fit

from .measure import Row, at_least, at_most, cpu_clock, need_peers, one_thread, percentile

SECTION = "convergence"
HELD_OUT_SEED = 10_000
MEDIAN_TARGET_MS, P99_TARGET_MS = 100.0, 1000.0


def data_sets():
    """Return {name: make(seed) -> (x, y)} of the two sets the lab trains on."""
    return {"XOR": lambda seed: datasets.xor(),
            "linear(100)": lambda seed: datasets.linear(100, seed)}


def run(plan):
    """Return the rows of time to 100% (nnserve and sklearn) and of the convergence check."""
    with_sklearn = need_peers(plan, "sklearn")
    rows = []
    with one_thread():
        for name, make in data_sets().items():
            rows += _time_to_perfect(name, make, plan.seeds, with_sklearn)
        for name, make in data_sets().items():
            rows += _convergence(name, make, plan.seeds)
    return rows


def _time_to_perfect(name, make, seeds, with_sklearn):
    arch, ms = Architecture(), []
    for seed in range(seeds):
        x, y = make(seed)
        started = cpu_clock()
        result = fit(arch, x, y, TrainingConfig(target_accuracy=1.0, seed=seed))
        elapsed = cpu_clock() - started
        ms.append(elapsed * 1e3 if result.accuracy == 1.0 else math.inf)
    median, p99 = statistics.median(ms), percentile(ms, 99)
    reached = sum(math.isfinite(t) for t in ms)
    spread = dict(low=min(ms), high=max(ms))
    rows = [
        Row(SECTION, f"time to 100%, {name}: median of {seeds} seeds", median, "ms", **spread,
            target=f"<= {MEDIAN_TARGET_MS:g} ms", ratio=f"reached {reached}/{seeds}",
            **at_most(median, MEDIAN_TARGET_MS)),
        Row(SECTION, f"time to 100%, {name}: p99 of {seeds} seeds", p99, "ms",
            target=f"<= {P99_TARGET_MS:g} ms",
            **at_most(p99, P99_TARGET_MS)),
    ]
    if with_sklearn:
        rows.append(_sklearn_default(name, make, seeds, median))
    else:
        rows.append(Row(SECTION, f"sklearn default, {name}", None, "",
                        note="skipped: not installed"))
    return rows


def _sklearn_default(name, make, seeds, our_median):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    ms, reached = [], 0
    for seed in range(seeds):
        x, y = make(seed)
        started = cpu_clock()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier(random_state=seed).fit(x, y)
        ms.append((cpu_clock() - started) * 1e3)
        reached += model.score(x, y) == 1.0
    median = statistics.median(ms)
    return Row(SECTION, f"sklearn default MLPClassifier, {name}: median fit", median, "ms",
               min(ms), max(ms), ratio=f"reached {reached}/{seeds}; "
               f"{median / our_median:.1f}x nnserve's median")


def _convergence(name, make, seeds):
    arch, perfect, held_out = Architecture(), 0, []
    x_test, y_test = datasets.linear(1000, HELD_OUT_SEED)
    for seed in range(seeds):
        x, y = make(seed)
        model, result = Model.train(arch, x, y, TrainingConfig(seed=seed))
        perfect += result.accuracy == 1.0
        if name.startswith("linear"):
            held_out.append(float(np.mean(model.predict(x_test)[1] == y_test)))
    need = math.ceil(0.99 * seeds)
    rows = [Row(SECTION, f"defaults to the end, {name}: seeds at 100% training accuracy",
                perfect, f"of {seeds}", target=f">= {need} of {seeds}", **at_least(perfect, need))]
    if held_out:
        rows.append(Row(SECTION, f"held-out linear(1000) accuracy of the {name} models: mean",
                        100 * statistics.mean(held_out), "%", 100 * min(held_out),
                        100 * max(held_out), ratio=f"min {100 * min(held_out):.1f}%"))
    return rows
