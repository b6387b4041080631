"""A stack of dense layers: initialisation, forward and backward.

Shapes: ``x: (n, d_0)``; layer i has ``W[i]: (d_i, d_{i+1})`` and
``b[i]: (d_{i+1},)``; the output is ``(n, 1)``.

All weights live in one flat vector ``params["theta"]``; ``params["W"]`` and
``params["b"]`` are views into it. Gradients have the same layout, so an
optimizer updates every layer with a handful of NumPy calls on two vectors.
"""

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .losses import LOSSES


@dataclass(frozen=True)
class Architecture:
    """Layer sizes from input to output, and the activations between them."""

    layers: tuple[int, ...] = (2, 4, 4, 1)
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    bias: bool = True

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(d) for d in self.layers))
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers must be at least two positive sizes, got {self.layers}")
        if self.layers[-1] != 1:
            raise ValueError(f"the output layer must have 1 unit, got {self.layers[-1]}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {self.output_activation!r}")

    def shapes(self):
        """Return [(name, shape)] of every weight array, in the order of theta."""
        shapes = []
        for i, (d_in, d_out) in enumerate(itertools.pairwise(self.layers)):
            shapes.append((f"W{i}", (d_in, d_out)))
            if self.bias:
                shapes.append((f"b{i}", (d_out,)))
        return shapes

    def to_dict(self):
        """Return the architecture as JSON-able metadata."""
        return {**asdict(self), "layers": list(self.layers)}


def params_from_theta(arch, theta):
    """Return params whose W and b are views into the flat vector theta."""
    params = {"theta": theta, "W": [], "b": []}
    start = 0
    for name, shape in arch.shapes():
        size = math.prod(shape)
        params[name[0]].append(theta[start : start + size].reshape(shape))
        start += size
    if start != theta.size:
        raise ValueError(f"theta has {theta.size} values, the architecture needs {start}")
    return params


def count_params(arch):
    """Return the number of weights and biases of the architecture."""
    return sum(math.prod(shape) for _, shape in arch.shapes())


def init_params(arch, rng, dtype=np.float64):
    """Return Xavier/Glorot-uniform weights and zero biases."""
    theta = np.zeros(count_params(arch), dtype=dtype)
    params = params_from_theta(arch, theta)
    for W in params["W"]:
        limit = math.sqrt(6.0 / sum(W.shape))
        W[...] = rng.uniform(-limit, limit, size=W.shape)
    return params


def forward(params, x, arch):
    """Return (y_hat, cache): the output (n, 1) and what backward needs."""
    hidden, _ = ACTIVATIONS[arch.activation]
    output, _ = ACTIVATIONS[arch.output_activation]
    W, b = params["W"], params["b"]
    last = len(W) - 1
    a, acts, zs = x, [x], []
    for i in range(len(W)):
        z = a @ W[i]
        if b:
            z += b[i]
        a = output(z) if i == last else hidden(z)
        zs.append(z)
        acts.append(a)
    return a, (acts, zs)


def backward(params, cache, dz, arch, grads):
    """Fill grads (same layout as params) from dz = dL/dz of the output layer; return grads."""
    _, hidden_grad = ACTIVATIONS[arch.activation]
    W, dW, db = params["W"], grads["W"], grads["b"]
    acts, zs = cache
    # db = 1^T dz: as a matrix product it is many times faster than a sum over axis 0
    ones = np.ones(len(dz), dz.dtype) if db else None
    for i in range(len(W) - 1, -1, -1):
        np.matmul(acts[i].T, dz, out=dW[i])
        if db:
            np.matmul(ones, dz, out=db[i])
        if i:
            dz = dz @ W[i].T
            dz *= hidden_grad(zs[i - 1], acts[i])
    return grads


def output_delta(y_hat, cache, y, arch, loss):
    """Return dL/dz of the output layer for the named loss."""
    _, loss_grad, wrt = LOSSES[loss]
    z = cache[1][-1]
    if wrt == "z":
        return loss_grad(z, y_hat, y)
    _, output_grad = ACTIVATIONS[arch.output_activation]
    dz = loss_grad(z, y_hat, y)
    dz *= output_grad(z, y_hat)
    return dz


def loss_value(y_hat, cache, y, loss):
    """Return the named loss of the output y_hat against y."""
    return LOSSES[loss][0](cache[1][-1], y_hat, y)
