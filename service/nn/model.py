"""A trained model as a value: architecture, weights and the configuration it came from."""

import math
from dataclasses import dataclass, field

import numpy as np

from .activations import ACTIVATIONS, apply
from .batches import Batches, predict
from .datasets import check_points, check_rows
from .network import Architecture, count_params, float_layers, forward_floats, params_from_theta
from .training import DTYPES, TrainingConfig, fit

# classify computes at most SMALL_ROWS points of a float64 model on Python floats, and at
# most FLOAT_WORK rows x weights: beyond, NumPy's calls cost less than the arithmetic.
SMALL_ROWS, FLOAT_WORK = 8, 320


@dataclass(frozen=True)
class Model:
    """Weights of a dense network, with the architecture and config that produced them."""

    arch: Architecture
    params: dict
    config: TrainingConfig
    # the weights as Python floats, for classify (float64 models only: see classify)
    floats: list | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        theta = self.params["theta"]
        floats = theta.dtype == np.float64 and theta.size <= FLOAT_WORK
        object.__setattr__(self, "floats", float_layers(self.arch, self.params) if floats else None)

    @classmethod
    def train(cls, arch, x, y, config=TrainingConfig(), **fit_kwargs):
        """Return (model, fit_result) from training arch on (x, y)."""
        result = fit(arch, x, y, config, **fit_kwargs)
        return cls(arch, result.params, config), result

    def predict_proba(self, x):
        """Return the output for each point of x (n, 2): a probability for a sigmoid output."""
        x = np.asarray(check_points(x), self.params["theta"].dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # callers check the scores
            return predict(self.params, Batches(self.arch, x, None))[0].astype(np.float64)

    def activations(self, x):
        """Return [a] of every layer after the input for points x (n, 2): a[i] (n, d_i+1),
        each hidden unit's activation and, last, the output (the units figure draws them)."""
        a, layers = np.asarray(check_points(x), np.float64), []
        last = len(self.params["W"]) - 1
        for i, W in enumerate(self.params["W"]):
            z = a @ W[0].astype(np.float64)
            if self.arch.bias:
                z += self.params["b"][i][0].astype(np.float64)
            name = self.arch.output_activation if i == last else self.arch.activation
            with np.errstate(over="ignore", invalid="ignore"):
                a = apply(ACTIVATIONS[name][0], z)
            layers.append(a)
        return layers

    def predict(self, x, threshold=0.5):
        """Return (scores, labels): labels are 1 where the score is at least threshold."""
        scores = self.predict_proba(x)
        return scores, (scores >= threshold).astype(np.int64)

    def classify(self, points, threshold=0.5):
        """Return (scores, labels) as lists of Python numbers: predict, in a response's form.

        A few points of a small float64 model (SMALL_ROWS, FLOAT_WORK) are computed on
        Python floats: at one point, NumPy's per-call overhead is most of what predict
        costs. The results agree with predict's to 1e-12 (not always to the last bit: a
        score equal to the threshold may fall on either side), and
        where the floats overflow (inf - inf is NaN, where BLAS may keep an infinity) the
        points go through predict. float32 models always do, whose float32 arithmetic the
        floats would not repeat."""
        rows, size = len(points), self.params["theta"].size
        # Fast path (benchmarks/RESULTS.md, "Serving": 1-point predict / healthz req/s).
        if self.floats is not None and rows <= SMALL_ROWS and rows * size <= FLOAT_WORK:
            scores = forward_floats(self.floats, check_rows(points))
            if all(map(math.isfinite, scores)):
                return scores, [1 if s >= threshold else 0 for s in scores]
        scores, labels = self.predict(points, threshold)
        return scores.tolist(), labels.tolist()

    def to_arrays(self):
        """Return (arrays, meta): the weights by name (W0, b0, ...) and JSON-able metadata."""
        arrays = {}
        for i, W in enumerate(self.params["W"]):
            arrays[f"W{i}"] = W[0]
        for i, b in enumerate(self.params["b"]):
            arrays[f"b{i}"] = b[0]
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
        config.check(arch)  # types and values, as a training request's would be
        dtype = DTYPES[config.dtype]
        expected = dict(arch.shapes())
        if set(arrays) != set(expected):
            raise ValueError(f"weights {sorted(arrays)} do not match {sorted(expected)}")
        # Every array checked before the weights are allocated: a meta may claim layers
        # far larger than the arrays it carries.
        for name, shape in arch.shapes():
            a = np.asarray(arrays[name])
            if a.dtype.kind != "f":
                raise ValueError(f"{name} has dtype {a.dtype}, expected a float")
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
            with np.errstate(over="ignore"):  # finite as kept: 1e300 is inf in float32
                kept = a.astype(dtype, copy=False)
            if not np.all(np.isfinite(kept)):
                raise ValueError(f"{name} has non-finite values"
                                 + (f" in {config.dtype}" if np.all(np.isfinite(a)) else ""))
        params = params_from_theta(arch, np.zeros(count_params(arch), dtype))
        for name, _ in arch.shapes():
            params[name[0]][int(name[1:])][0] = np.asarray(arrays[name])
        return cls(arch, params, config)
