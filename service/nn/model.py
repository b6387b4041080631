"""A trained model as a value: architecture, weights and the configuration it came from."""

import threading
from dataclasses import dataclass, field

import numpy as np

from .batches import Batches, predict
from .datasets import check_points
from .network import Architecture, Workspace, forward, params_from_theta
from .training import DTYPES, TrainingConfig, fit

SMALL_ROWS = 8  # a prediction of at most this many points reuses its thread's workspace


@dataclass(frozen=True)
class Model:
    """Weights of a dense network, with the architecture and config that produced them."""

    arch: Architecture
    params: dict
    config: TrainingConfig
    # each thread's workspace for small predictions (see _small_workspace)
    small: threading.local = field(default_factory=threading.local, init=False, repr=False,
                                   compare=False)

    @classmethod
    def train(cls, arch, x, y, config=TrainingConfig(), **fit_kwargs):
        """Return (model, fit_result) from training arch on (x, y)."""
        result = fit(arch, x, y, config, **fit_kwargs)
        return cls(arch, result.params, config), result

    def predict_proba(self, x):
        """Return the output for each point of x (n, 2): a probability for a sigmoid output."""
        x = np.asarray(check_points(x), self.params["theta"].dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # callers check the scores
            if len(x) <= SMALL_ROWS:
                y_hat = forward(self.params, self._small_workspace(x).load(x))
            else:
                y_hat = predict(self.params, Batches(self.arch, x, None))
            return y_hat[:, 0].astype(np.float64)  # a copy: the workspace is reused

    def _small_workspace(self, x):
        """Return this thread's workspace for the rows of x: its plan is made once, not per call.

        Each serving thread keeps one, so a one-point prediction allocates next to nothing."""
        work = getattr(self.small, "work", None)
        if work is None or len(work.a[0]) != len(x):
            work = self.small.work = Workspace(self.arch, len(x), x.dtype)
        return work

    def predict(self, x, threshold=0.5):
        """Return (scores, labels): labels are 1 where the score is at least threshold."""
        scores = self.predict_proba(x)
        return scores, (scores >= threshold).astype(np.int64)

    def to_arrays(self):
        """Return (arrays, meta): the weights by name (W0, b0, ...) and JSON-able metadata."""
        arrays = {}
        for i, W in enumerate(self.params["W"]):
            arrays[f"W{i}"] = W
        for i, b in enumerate(self.params["b"]):
            arrays[f"b{i}"] = b
        meta = {"architecture": self.arch.to_dict(), "training": self.config.to_dict()}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays, meta):
        """Return the model described by to_arrays() output; raise ValueError if inconsistent."""
        try:
            arch = Architecture(**meta["architecture"])
            config = TrainingConfig(**meta["training"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"metadata is incomplete or has unknown fields: {exc}") from None
        dtype = DTYPES[config.dtype] if config.dtype in DTYPES else None
        if dtype is None:
            raise ValueError(f"unknown dtype {config.dtype!r}")
        expected = dict(arch.shapes())
        if set(arrays) != set(expected):
            raise ValueError(f"weights {sorted(arrays)} do not match {sorted(expected)}")
        parts = []
        for name, shape in arch.shapes():
            a = np.asarray(arrays[name])
            if a.dtype.kind != "f":
                raise ValueError(f"{name} has dtype {a.dtype}, expected a float")
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} has non-finite values")
            parts.append(a.astype(dtype).ravel())
        return cls(arch, params_from_theta(arch, np.concatenate(parts)), config)
