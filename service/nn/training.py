"""fit() and fit_many(): the epoch loop over a stack of networks. Progress goes to a callback.

Trials (TrainingConfigs) of one shape (TrainingConfig.shape) train together in one stack
(stack.py): every epoch is one pass over all their networks, each keeping its own
learning rate, weight decay, seed (initial weights and shuffles) and stopping point, and
each trial ends as it would trained alone. With starts > 1, a trial's starts (seeded
initialisations, drawn in turn) train side by side for probe_epochs and the one with the
lowest monitored loss continues: a small network started in a poor basin (XOR's plateau)
is dropped early. Each start's curve stays in the history's "probes".

An epoch runs its batches in order, each evaluated block by block (batches.py) before one
optimizer step; the metrics of an epoch (mean loss, accuracy when wanted, the same on the
held-out validation set) are those of the weights its forward passes met, before the
matching updates. Stop conditions are checked before the epoch's last update, so a
full-batch run that stops returns exactly the weights it measured; with
restore_best_weights, early stopping on the monitored loss returns the weights of its best
epoch, as Keras' restore_best_weights does.

Only the epochs someone looks at are measured: those recorded in the history, those
reported to the callback, every epoch when a stop condition or the validation monitor
watches, and the probes' last epoch. A divergence shows at the next measured epoch, or in
the final weights.
"""

import numpy as np

from .config import DTYPES, TrainingConfig
from .datasets import hold_out
from .trials import FitResult, Group

__all__ = ["DTYPES", "Diverged", "FitResult", "TrainingConfig", "fit", "fit_many"]


class Diverged(ArithmeticError):
    """The loss became NaN or infinite: the run produced no usable model."""

    def __init__(self, epoch, loss):
        super().__init__(f"training diverged at epoch {epoch}: loss is {loss}")
        self.epoch = epoch


def fit(arch, x, y, config=TrainingConfig(), on_progress=None, report_every=100, split_seed=0):
    """Return a FitResult: arch trained on points x (n, 2) and labels y (n,) with config.

    config.validation_split holds out a stratified part of the set, chosen with split_seed
    (the data set's seed). on_progress(epoch, loss, accuracy, weights) is called every
    report_every epochs, weights() returning a copy of the network's flat weights (only
    while the call lasts); returning True stops training with stop_reason "cancelled".
    Raise Diverged when the loss or the weights stop being finite.
    """
    report = None if on_progress is None else (lambda epoch, rows: on_progress(epoch, *rows[0]))
    result = fit_many(arch, x, y, [config], report, report_every, split_seed)[0]
    if result.stop_reason == "diverged":
        raise Diverged(result.epochs_run, result.loss)
    return result


def fit_many(arch, x, y, configs, on_progress=None, report_every=100, split_seed=0):
    """Return a FitResult per config, each trained on (x, y); configs of one shape together.

    Each result equals fit()'s for its config alone, but a trial that diverges ends with
    stop_reason "diverged" and params None. on_progress(epoch, rows) gets
    {index in configs: (loss, accuracy, weights)} of the trials still training, every report_every
    epochs; returning True cancels them all.
    """
    for config in configs:
        config.check(arch)
    groups = {}
    for i, config in enumerate(configs):
        groups.setdefault(config.shape(), []).append(i)
    results = [None] * len(configs)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss
        for members in groups.values():
            report = None if on_progress is None else (
                lambda epoch, rows, members=members: on_progress(
                    epoch, {members[i]: row for i, row in rows.items()}))
            group = Group(arch, _sets(x, y, configs[members[0]], split_seed),
                           [configs[i] for i in members], report, report_every)
            for i, result in zip(members, group.run(), strict=True):
                results[i] = result
    return results


def _sets(x, y, config, seed):
    """Return ((x, y) to train on, (x, y) held out or None), in the config's dtype."""
    dtype = DTYPES[config.dtype]
    x, y = np.asarray(x, dtype), np.asarray(y, dtype).ravel()
    if not config.validation_split:
        return (x, y), None
    train, held = hold_out(y, config.validation_split, seed)
    return (x[train], y[train]), (x[held], y[held])
