"""fit(): the epoch loop. Progress goes to a callback; nothing here logs or sleeps.

An epoch runs its batches in order; the metrics of an epoch (mean loss, and
accuracy when wanted) are those measured by its forward passes, before the
matching updates. Stop conditions are checked before the epoch's last update,
so a full-batch run that stops returns exactly the weights it measured.
"""

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .losses import LOSS_OUTPUTS
from .network import (
    backward,
    forward,
    init_params,
    loss_value,
    output_delta,
    params_from_theta,
)
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
        if min(self.epochs, self.starts, self.probe_epochs, self.batch_size or 1) < 1:
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


def accuracy(y_hat, y, threshold=0.5):
    """Return the fraction of rows where (y_hat >= threshold) equals the label y."""
    return 1.0 - np.count_nonzero((y_hat >= threshold) != (y > 0.5)) / len(y)


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
    x, y = np.asarray(x, dtype), np.asarray(y, dtype).reshape(-1, 1)
    rng = np.random.default_rng(config.seed)
    stride = history_stride(config.epochs)
    history = {"epoch": [], "loss": [], "accuracy": []}

    def observe(run, epoch, loss, acc):
        if not math.isfinite(loss):
            raise Diverged(epoch, loss)
        run.loss = loss
        if epoch % stride == 0:
            _record(history, epoch, loss, acc)
        if on_progress is not None and epoch % report_every == 0 and on_progress(epoch, loss, acc):
            return "cancelled"
        return run.stopper.reason(loss, acc)

    epoch, runs = 0, []
    while len(runs) < config.starts and epoch < config.epochs:
        runs.append(_Run(arch, config, init_params(arch, rng, dtype)))
        probe = config.probe_epochs if config.starts > 1 else config.epochs
        end = min(epoch + probe, config.epochs)
        epoch, stop = runs[-1].train(x, y, rng, epoch, end, stride, report_every, observe)
        if stop:
            return _finish(arch, runs[-1].params, x, y, config.loss, epoch, stop, history)
    best = min(runs, key=lambda run: run.loss)
    epoch, stop = best.train(x, y, rng, epoch, config.epochs, stride, report_every, observe)
    return _finish(arch, best.params, x, y, config.loss, epoch, stop or "epochs", history)


class _Run:
    """One initialisation being trained: its weights, gradients, optimizer state and stopper."""

    def __init__(self, arch, config, params):
        self.arch, self.config, self.params = arch, config, params
        self.grads = params_from_theta(arch, np.zeros_like(params["theta"]))
        opt_init, self.opt_step = OPTIMIZERS[config.optimizer]
        self.state = opt_init(params["theta"])
        self.stopper, self.loss = _Stopper(config), math.inf

    def update(self, y_hat, cache, yb):
        """Back-propagate one batch and take one optimizer step."""
        dz = output_delta(y_hat, cache, yb, self.arch, self.config.loss)
        backward(self.params, cache, dz, self.arch, self.grads)
        self.opt_step(self.params["theta"], self.grads["theta"], self.state, self.config)

    def train(self, x, y, rng, first, end, stride, report_every, observe):
        """Train epochs first..end-1; return (epoch reached, stop reason or None)."""
        c = self.config
        for e in range(first, end):
            wants_acc = self.stopper.wants_accuracy() or e % stride == 0 or e % report_every == 0
            batches = _batches(x, y, c.batch_size, rng)
            stop = _run_epoch(e, batches, self, wants_acc, observe)
            if stop:
                return e, stop
        return end, None


def _run_epoch(epoch, batches, run, wants_acc, observe):
    """Run one epoch's batches; return a stop reason found before its last update, or None."""
    total = hits = 0.0
    last = len(batches) - 1
    for k, (xb, yb) in enumerate(batches):
        y_hat, cache = forward(run.params, xb, run.arch)
        total += loss_value(y_hat, cache, yb, run.config.loss) * len(yb)
        if wants_acc:
            hits += accuracy(y_hat, yb) * len(yb)
        if k == last:
            n = sum(len(b[1]) for b in batches) if last else len(yb)
            stop = observe(run, epoch, total / n, hits / n if wants_acc else math.nan)
            if stop:
                return stop
        run.update(y_hat, cache, yb)
    return None


def _finish(arch, params, x, y, loss_name, epochs_run, reason, history):
    """Return the FitResult, measuring the final weights with one full forward pass."""
    if not np.all(np.isfinite(params["theta"])):
        raise Diverged(epochs_run, "finite but the weights are not")
    y_hat, cache = forward(params, x, arch)
    loss, acc = loss_value(y_hat, cache, y, loss_name), accuracy(y_hat, y)
    if not math.isfinite(loss):
        raise Diverged(epochs_run, loss)
    if not history["epoch"] or history["epoch"][-1] != epochs_run:
        _record(history, epochs_run, loss, acc)
    return FitResult(params, epochs_run, loss, acc, reason, history)


def _record(history, epoch, loss, acc):
    history["epoch"].append(epoch)
    history["loss"].append(loss)
    history["accuracy"].append(acc)


def _batches(x, y, batch_size, rng):
    """Return [(xb, yb)]: the whole set, or seeded shuffled mini-batches of batch_size."""
    n = len(x)
    if batch_size is None or batch_size >= n:
        return [(x, y)]
    perm = rng.permutation(n)
    xs, ys = x[perm], y[perm]
    return [(xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, n, batch_size)]
