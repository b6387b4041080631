"""TrainingConfig: how to train, with the defaults, their checks, and what trials may share."""

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import get_args

import numpy as np

from .losses import LOSS_OUTPUTS
from .optimizers import OPTIMIZERS

DTYPES = {"float64": np.float64, "float32": np.float32}
MONITORS = ("loss", "validation_loss")
MAX_VALIDATION_SPLIT = 0.5
# The knobs each network of a batched pass keeps its own; the other fields are the pass's
# shape, which trials trained together share (TrainingConfig.shape).
PER_NETWORK = ("learning_rate", "l2", "seed", "target_accuracy", "tolerance", "patience")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the loop's knobs, with defaults chosen for reliability and measured
    generalisation (benchmarks/RESULTS.md, "Generalisation")."""

    epochs: int = 5000
    learning_rate: float = 0.02
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
    monitor: str = "loss"
    restore_best_weights: bool = True
    validation_split: float = 0.0
    l2: float = 4e-5
    dtype: str = "float64"
    starts: int = 4
    probe_epochs: int = 300

    def check(self, arch):
        """Raise ValueError when the configuration cannot train the architecture."""
        self._check_types()
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
        if not 0.0 <= self.validation_split <= MAX_VALIDATION_SPLIT:
            raise ValueError(f"validation_split must be within 0 and {MAX_VALIDATION_SPLIT}")
        if not (math.isfinite(self.l2) and self.l2 >= 0.0):
            raise ValueError("l2 must be a finite number >= 0")
        if self.monitor not in MONITORS:
            raise ValueError(f"unknown monitor {self.monitor!r}")
        if self.monitor == "validation_loss" and not self.validation_split:
            raise ValueError("monitor 'validation_loss' needs a validation_split above 0")

    def _check_types(self):
        """Raise ValueError naming the first field whose value is not of its annotated type
        (an uploaded file's meta has not been through the request schema)."""
        for f in fields(self):
            value, kinds = getattr(self, f.name), get_args(f.type) or (f.type,)
            if isinstance(value, bool):
                ok = bool in kinds
            elif isinstance(value, numbers.Integral):
                ok = int in kinds or float in kinds
            elif isinstance(value, numbers.Real):
                ok = float in kinds
            else:
                ok = (value is None and type(None) in kinds
                      or isinstance(value, str) and str in kinds)
            if not ok:
                names = " or ".join(k.__name__ for k in kinds)
                raise ValueError(f"training.{f.name} must be {names}, got {value!r}")

    def to_dict(self):
        """Return the configuration as JSON-able metadata."""
        return asdict(self)

    def shape(self):
        """Return what trials trained in one batched pass must share: all but PER_NETWORK."""
        return tuple((f.name, getattr(self, f.name)) for f in fields(self)
                     if f.name not in PER_NETWORK)

    def watches(self):
        """Return whether a stop condition or the validation monitor needs every epoch measured."""
        stops = (self.target_accuracy, self.tolerance, self.patience)
        return any(s is not None for s in stops) or self.monitor == "validation_loss"

    def restores(self):
        """Return whether the fit ends with the weights of its best monitored epoch."""
        return self.restore_best_weights and (
            self.patience is not None or self.monitor == "validation_loss")

    def network_epochs(self):
        """Return the epochs of all the networks one fit trains: the starts' probes and the rest."""
        probes = (self.starts - 1) * min(self.probe_epochs, self.epochs) if self.starts > 1 else 0
        return self.epochs + probes
