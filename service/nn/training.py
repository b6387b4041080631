"""fit(): the epoch loop. Progress goes to a callback; nothing here logs or sleeps.

An epoch runs its batches in order, each evaluated block by block (batches.py)
before one optimizer step; the metrics of an epoch (mean loss, and accuracy when
wanted) are those measured by its forward passes, before the matching updates.
Stop conditions are checked before the epoch's last update, so a full-batch run
that stops returns exactly the weights it measured.

Only the epochs someone looks at are measured: those recorded in the history,
those reported to the callback, every epoch when a stop condition watches, and
the last epoch of each run (multi-start compares them). A divergence shows at the
next measured epoch, or in the final weights.
"""

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .batches import Batches, evaluate
from .losses import LOSS_OUTPUTS
from .network import init_params, params_from_theta
from .optimizers import OPTIMIZERS

DTYPES = {"float64": np.float64, "float32": np.float32}
MAX_HISTORY = 1000


class Diverged(ArithmeticError):
    """The loss became NaN or infinite: the run produced no usable model."""

    def __init__(self, epoch, loss):
        super().__init__(f"training diverged at epoch {epoch}: loss is {loss}")
        self.epoch = epoch


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the loop's knobs, with defaults chosen for reliability."""

    epochs: int = 5000
    learning_rate: float = 0.1
    optimizer: str = "adam"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    batch_size: int | None = None
    loss: str = "bce"
    seed: int = 0
    target_accuracy: float | None = None
    tolerance: float | None = None
    patience: int | None = None
    dtype: str = "float64"
    starts: int = 4
    probe_epochs: int = 300

    def check(self, arch):
        """Raise ValueError when the configuration cannot train the architecture."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        if self.loss not in LOSS_OUTPUTS:
            raise ValueError(f"unknown loss {self.loss!r}")
        if arch.output_activation not in LOSS_OUTPUTS[self.loss]:
            raise ValueError(f"loss {self.loss!r} needs a sigmoid output activation")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}")
        batch_size = 1 if self.batch_size is None else self.batch_size
        if min(self.epochs, self.starts, self.probe_epochs, batch_size) < 1:
            raise ValueError("epochs, starts, probe_epochs and batch_size must be positive")

    def to_dict(self):
        """Return the configuration as JSON-able metadata."""
        return asdict(self)


@dataclass
class FitResult:
    """What fit() returns: the weights, the metrics history and why it stopped."""

    params: dict
    epochs_run: int
    loss: float
    accuracy: float
    stop_reason: str
    history: dict = field(default_factory=lambda: {"epoch": [], "loss": [], "accuracy": []})


def history_stride(epochs, max_points=MAX_HISTORY):
    """Return k such that recording every k-th epoch keeps at most max_points + 1 rows."""
    return max(1, math.ceil(epochs / max_points))


class _Stopper:
    """Decides when to stop early: target accuracy, loss tolerance, patience."""

    def __init__(self, config):
        self.config, self.best, self.since_best = config, math.inf, 0

    def wants_accuracy(self):
        return self.config.target_accuracy is not None

    def reason(self, loss, acc):
        c = self.config
        if c.target_accuracy is not None and acc >= c.target_accuracy:
            return "target_accuracy"
        if c.tolerance is not None and loss < c.tolerance:
            return "tolerance"
        if loss < self.best:
            self.best, self.since_best = loss, 0
        else:
            self.since_best += 1
        if c.patience is not None and self.since_best >= c.patience:
            return "patience"
        return None


def fit(arch, x, y, config=TrainingConfig(), on_progress=None, report_every=100):
    """Return a FitResult: arch trained on points x (n, 2) and labels y (n,) with config.

    With config.starts > 1, each of several seeded initialisations first trains
    for probe_epochs and the one with the lowest loss continues: a small network
    started in a poor basin (XOR's plateau) is dropped early. Epochs are counted
    over all of them, so config.epochs bounds the whole run's work.
    on_progress(epoch, loss, accuracy) is called every report_every epochs;
    returning True stops training with stop_reason "cancelled".
    """
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by the loss
        return _fit(arch, x, y, config, on_progress, report_every)


def _fit(arch, x, y, config, on_progress, report_every):
    config.check(arch)
    dtype = DTYPES[config.dtype]
    data = Batches(arch, np.asarray(x, dtype), np.asarray(y, dtype).reshape(-1, 1),
                   config.batch_size)
    rng = np.random.default_rng(config.seed)
    monitor = _Monitor(config, on_progress, report_every)
    epoch, runs = 0, []
    while len(runs) < config.starts and epoch < config.epochs:
        runs.append(_Run(arch, config, init_params(arch, rng, dtype)))
        probe = config.probe_epochs if config.starts > 1 else config.epochs
        end = min(epoch + probe, config.epochs)
        epoch, stop = runs[-1].train(data, rng, epoch, end, monitor)
        if stop:
            return _finish(runs[-1].params, data, config.loss, epoch, stop, monitor)
    best = min(runs, key=lambda run: run.loss)
    epoch, stop = best.train(data, rng, epoch, config.epochs, monitor)
    return _finish(best.params, data, config.loss, epoch, stop or "epochs", monitor)


class _Monitor:
    """Which epochs are measured, and where their metrics go: history, callback, stopper."""

    def __init__(self, config, on_progress, report_every):
        self.stride, self.report_every = history_stride(config.epochs), report_every
        self.on_progress = on_progress
        stops = (config.target_accuracy, config.tolerance, config.patience)
        self.every_epoch = any(stop is not None for stop in stops)
        self.history = {"epoch": [], "loss": [], "accuracy": []}

    def next_measured(self, epoch):
        """Return the first epoch from epoch on whose loss is wanted (stop, history, callback)."""
        if self.every_epoch:
            return epoch
        following = -(-epoch // self.stride) * self.stride
        if self.on_progress is not None:
            following = min(following, -(-epoch // self.report_every) * self.report_every)
        return following

    def shows(self, epoch):
        """Return whether the epoch goes into the history or to the callback."""
        return epoch % self.stride == 0 or (
            self.on_progress is not None and epoch % self.report_every == 0)

    def observe(self, run, epoch, loss, acc):
        """Pass a measured epoch on; return a stop reason or None."""
        if not math.isfinite(loss):
            raise Diverged(epoch, loss)
        run.loss = loss
        if epoch % self.stride == 0:
            self.record(epoch, loss, acc)
        if (self.on_progress is not None and epoch % self.report_every == 0
                and self.on_progress(epoch, loss, acc)):
            return "cancelled"
        return run.stopper.reason(loss, acc)

    def record(self, epoch, loss, acc):
        """Append one row to the history."""
        self.history["epoch"].append(epoch)
        self.history["loss"].append(loss)
        self.history["accuracy"].append(acc)


class _Run:
    """One initialisation being trained: its weights, gradients, optimizer state and stopper."""

    def __init__(self, arch, config, params):
        self.config, self.params = config, params
        self.grads = params_from_theta(arch, np.zeros_like(params["theta"]))
        opt_init, opt_step = OPTIMIZERS[config.optimizer]
        state = opt_init(params["theta"], config)
        # step() takes one optimizer step along the gradient of the last batch evaluated.
        self.step = functools.partial(opt_step, params["theta"], self.grads["theta"], state,
                                      config)
        self.stopper, self.loss = _Stopper(config), math.inf

    def train(self, data, rng, first, end, monitor):
        """Train epochs first..end-1; return (epoch reached, stop reason or None)."""
        params, grads, loss, step = self.params, self.grads, self.config.loss, self.step
        measured = monitor.next_measured(first)
        for epoch in range(first, end):
            if epoch == measured or epoch == end - 1:  # multi-start compares last losses
                stop = _measured_epoch(epoch, data, rng, self, monitor)
                if stop:
                    return epoch, stop
                measured = monitor.next_measured(epoch + 1)
            else:
                for batch in data.epoch(rng):
                    evaluate(params, batch, loss, grads)
                    step()
        return end, None


def _measured_epoch(epoch, data, rng, run, monitor):
    """Run one epoch's batches; return a stop reason found before its last update, or None."""
    wants_acc = monitor.shows(epoch) or run.stopper.wants_accuracy()
    total = right = 0
    for k, batch in enumerate(data.epoch(rng)):
        loss_sum, batch_right = evaluate(run.params, batch, run.config.loss, run.grads,
                                         measure=True, count_right=wants_acc)
        total, right = total + loss_sum, right + batch_right
        if k == data.last:
            acc = right / data.n if wants_acc else math.nan
            stop = monitor.observe(run, epoch, total / data.n, acc)
            if stop:
                return stop
        run.step()
    return None


def _finish(params, data, loss_name, epochs_run, reason, monitor):
    """Return the FitResult, measuring the final weights with one full forward pass."""
    if not np.all(np.isfinite(params["theta"])):
        raise Diverged(epochs_run, "finite but the weights are not")
    loss_sum, right = evaluate(params, data.whole(), loss_name, measure=True, count_right=True)
    loss, acc = loss_sum / data.n, right / data.n
    if not math.isfinite(loss):
        raise Diverged(epochs_run, loss)
    if not monitor.history["epoch"] or monitor.history["epoch"][-1] != epochs_run:
        monitor.record(epochs_run, loss, acc)
    return FitResult(params, epochs_run, loss, acc, reason, monitor.history)
