"""Many networks in one pass: a sweep trained together beside one of its trials alone.

The issue's sweep: the lab's network on XOR, 8 network seeds x 8 learning rates, 2,000
full-batch epochs, every other knob at its default (so 4 starts a trial), trained by
fit_many; beside it, one of its trials (seed 0, learning rate 0.1) through fit(), the
function every training job calls. The same with one start a trial is shown for
information. Each trial's weights are checked against the trial trained alone. Then the
multi-start probes: 4 starts for probe_epochs against one start for as long.
"""

import dataclasses

import numpy as np

from service.nn import datasets
from service.nn.network import Architecture
from service.nn.training import TrainingConfig, fit, fit_many

from .measure import at_most, one_thread, side_by_side

SECTION = "sweeps"
RATES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
SWEEP_TARGET = 4.0  # the sweep's time over one trial's
STARTS_TARGET = 1.5  # 4 starts' probes over one start's
EQUAL = 1e-12


def run(plan):
    """Return the rows of the sweep against one trial, and of the probes."""
    x, y = datasets.xor()
    rows = []
    with one_thread():
        for starts, judged in ((4, True), (1, False)):
            rows += _sweep(x, y, plan, starts, judged)
        rows += _probes(x, y, plan)
    return rows


def _sweep(x, y, plan, starts, judged):
    arch = Architecture()
    base = TrainingConfig(epochs=plan.sweep_epochs, starts=starts)
    configs = [dataclasses.replace(base, seed=seed, learning_rate=lr)
               for seed in range(8) for lr in RATES]
    one = dataclasses.replace(base, seed=0, learning_rate=0.1)
    results = {}
    times = side_by_side({"sweep": lambda: results.update(sweep=fit_many(arch, x, y, configs)),
                          "one": lambda: fit(arch, x, y, one)}, plan.repeats)
    worst = max(_distance(result, fit(arch, x, y, config))
                for config, result in zip(configs, results["sweep"], strict=True))
    if worst > EQUAL:
        raise AssertionError(f"a trial of the sweep ended {worst:.2e} away from itself alone")
    ratio = times["sweep"].median / times["one"].median
    label = f"{starts} start{'s' * (starts > 1)} a trial, {plan.sweep_epochs} epochs"
    verdict = {"target": f"<= {SWEEP_TARGET:g}x", **at_most(ratio, SWEEP_TARGET)} if judged else {}
    return [
        times["one"].row(SECTION, f"one trial alone (fit), XOR, {label}", 1e3, "ms"),
        times["sweep"].row(SECTION, f"64 trials together (fit_many), XOR, {label}", 1e3, "ms",
                           ratio=f"{ratio:.2f}x one trial; {64 / ratio:.1f} trials' work "
                           f"for one's time; weights equal to alone (max diff {worst:.0e})",
                           **verdict),
    ]


def _distance(together, alone):
    return float(np.max(np.abs(together.params["theta"] - alone.params["theta"])))


def _probes(x, y, plan):
    arch, epochs = Architecture(), TrainingConfig().probe_epochs
    configs = {starts: TrainingConfig(epochs=epochs, starts=starts, probe_epochs=epochs)
               for starts in (1, 4)}
    times = side_by_side({starts: (lambda c=c: fit(arch, x, y, c)) for starts, c in
                          configs.items()}, plan.repeats)
    ratio = times[4].median / times[1].median
    return [
        times[1].row(SECTION, f"one start, {epochs} epochs, XOR", 1e3, "ms"),
        times[4].row(SECTION, f"4 starts side by side (the default probes), {epochs} epochs, "
                     "XOR", 1e3, "ms", ratio=f"{ratio:.2f}x one start",
                     target=f"<= {STARTS_TARGET:g}x", **at_most(ratio, STARTS_TARGET)),
    ]
