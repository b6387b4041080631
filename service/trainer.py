"""A training request's work: its limits, its data set and network, the fit and its metrics.

The job runner (through core.Service) and the command line train through these, so a
request refused by one is refused by the other.
"""

import math
import time
from dataclasses import dataclass

from . import snapshots
from .errors import InvalidInput, LimitExceeded
from .nn.datasets import DATASETS, check_dataset, hold_out
from .nn.history import MAX_ROWS, thin_history
from .nn.model import Model
from .nn.network import Architecture, count_params
from .nn.training import TrainingConfig

REPORT_WORK = 200_000  # points per progress check: every 100 epochs of XOR, every epoch of 10^6


@dataclass(frozen=True)
class Fitted:
    """A finished fit of a request: the model, the fit's result, its data and how long it took."""

    model: object
    fit: object
    x: object
    y: object
    dataset: dict
    seconds: float

    def metrics(self):
        """Return the metrics a saved model carries: final loss and accuracy on the training and
        the held-out points (None when none are held out), epochs, time, stop, best epoch."""
        fit = self.fit
        return {"loss": fit.loss, "accuracy": fit.accuracy,
                "validation_loss": fit.validation_loss,
                "validation_accuracy": fit.validation_accuracy, "epochs": fit.epochs_run,
                "seconds": round(self.seconds, 6), "stop_reason": fit.stop_reason,
                "best_epoch": fit.best_epoch}


def build_dataset(spec):
    """Return (x, y, summary) for a dataset spec of a TrainingRequest."""
    params = spec.model_dump(exclude={"kind", "points", "labels"})
    if spec.kind == "points":
        x, y = spec.points, spec.labels
    else:
        x, y = DATASETS[spec.kind](**params)
    try:
        x, y = check_dataset(x, y)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=("dataset",)) from None
    return x, y, {"kind": spec.kind, "n": len(x), **params}


def build_network(req):
    """Return (Architecture, TrainingConfig) of a TrainingRequest."""
    net = req.network
    arch = Architecture((2, *net.hidden, 1), net.activation, net.output_activation, net.bias)
    config = TrainingConfig(**req.training.model_dump(), seed=net.seed)
    return arch, config


def split_seed(summary):
    """Return the seed that draws a data set's validation split: the data set's own, or 0."""
    return summary.get("seed", 0)


def check_request(req, settings, check_data=None):
    """Refuse a request over a limit of settings, or one that cannot train (before any work).
    check_data(dataset, validation_split) is check_data_of unless given (a sweep's trials
    sharing a data set check it once)."""
    epochs, dataset = req.training.epochs, req.dataset
    check_network(req.network.hidden, settings, ("network", "hidden"))
    check_limit("max_epochs", epochs, settings.max_epochs, ("training", "epochs"))
    field = ("dataset", "points") if dataset.kind == "points" else ("dataset",)
    check_limit("max_train_points", dataset.size, settings.max_train_points, field)
    arch, config = build_network(req)
    # a single-class or malformed set, or one too small to split, is refused now
    (check_data or check_data_of)(dataset, config.validation_split)
    try:
        config.check(arch)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=("training",)) from None
    check_limit("max_work", request_work(req), settings.max_work, ("training", "epochs"))


def check_data_of(dataset, validation_split):
    """Refuse a data set spec that cannot train with validation_split held out: malformed,
    single-class, or too small to split (422 naming the field). Keeps nothing it built."""
    _, y, summary = build_dataset(dataset)
    try:
        hold_out(y, validation_split, split_seed(summary))
    except ValueError as exc:
        raise InvalidInput(str(exc), field=("training", "validation_split")) from None


def request_work(req):
    """Return a request's work: epochs (every start's probes too) x points x parameters."""
    arch, config = build_network(req)
    return config.network_epochs() * req.dataset.size * count_params(arch)


def check_network(hidden, settings, field):
    """Refuse hidden layers over the configured number of layers or units."""
    check_limit("max_hidden_layers", len(hidden), settings.max_hidden_layers, field)
    check_limit("max_hidden_units", max(hidden, default=0), settings.max_hidden_units, field)


def check_limit(name, value, maximum, field):
    """Raise LimitExceeded naming the setting when value is over maximum."""
    if value > maximum:
        raise LimitExceeded(name, value, maximum, field)


def fit_request(req, on_progress=None, report_every=None):
    """Return the Fitted of a request; on_progress(epoch, loss, accuracy) as fit() calls it."""
    x, y, summary = build_dataset(req.dataset)
    arch, config = build_network(req)
    report_every = report_every or max(1, min(100, REPORT_WORK // len(x)))
    started = time.monotonic()
    model, fit = Model.train(arch, x, y, config, on_progress=on_progress,
                             report_every=report_every, split_seed=split_seed(summary))
    return Fitted(model, fit, x, y, summary, time.monotonic() - started)


class JobProgress:
    """The fit callback of a job: keeps a bounded history and forwards it to report(), with
    a maker of the snapshot of the weights (snapshots.py) that report calls only when it
    writes this progress."""

    def __init__(self, epochs, report, arch):
        self.epochs, self.report, self.arch = epochs, report, arch
        self.started = time.monotonic()
        self.history = {"epoch": [], "loss": [], "accuracy": []}

    def __call__(self, epoch, loss, accuracy, weights):
        h = self.history
        for key, value in zip(h, (epoch, loss, accuracy), strict=True):
            h[key].append(None if isinstance(value, float) and math.isnan(value) else value)
        if len(h["epoch"]) > MAX_ROWS + 1:
            self.history = h = thin_history(h)
        return self.report(self._progress(epoch, loss, accuracy), h,
                           snapshot=lambda: snapshots.snapshot(self.arch, weights(), epoch))

    def _progress(self, epoch, loss, accuracy):
        return {"epoch": epoch, "epochs": self.epochs, "loss": loss, "accuracy": accuracy,
                "elapsed_s": round(time.monotonic() - self.started, 3)}

    def final_snapshot(self, fitted):
        """Return the maker of the finished fit's snapshot (its model's weights)."""
        epoch, theta = fitted.fit.epochs_run, fitted.model.params["theta"]
        return lambda: snapshots.snapshot(self.arch, theta, epoch)

    def final(self, fitted):
        """Return the progress of the finished fit."""
        fit = fitted.fit
        return {**self._progress(fit.epochs_run, fit.loss, fit.accuracy),
                "elapsed_s": fitted.seconds}
