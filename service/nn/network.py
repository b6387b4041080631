"""Networks of one architecture, stacked: their layout, initialisation, and a few rows on floats.

Shapes: network k of a stack of m has, for layer i, ``W[i][k]: (d_i, d_{i+1})`` and
``b[i][k]: (d_{i+1},)``; points are ``x: (n, d_0)`` and the output is one value per point.
A trained model is a stack of one.

All weights of a stack live in one flat vector ``params["theta"]`` (an optimizer updates
every layer of every network with a few NumPy calls). Layer i is the block
``params["Wb"][i] = [W; b]: (d_i + 1, m, d_{i+1})``: for each network, the augmented
matrix whose last row is the bias, so that ``z = [a, 1] [W; b] = a W + b`` is one product
(without biases there is no bias row). For one network the block is that matrix, contiguous;
for m, the networks sit between its rows and columns, so network k's matrix is the strided
view ``Wb[i][:, k]``, and a batched product takes all of them at once (passes.py).
``params["W"][i]: (m, d_i, d_{i+1})`` and ``params["b"][i]: (m, d_{i+1})`` are views too.

forward_floats computes forward for a few rows of one network on Python floats: at one
row, NumPy's calls cost more than the arithmetic they do.
"""

import functools
import itertools
import math
import operator
from dataclasses import asdict, dataclass

import numpy as np

from .activations import ACTIVATIONS, ON_FLOATS, OUTPUT_ACTIVATIONS


@dataclass(frozen=True)
class Architecture:
    """Layer sizes from input to output, and the activations between them."""

    layers: tuple[int, ...] = (2, 4, 4, 1)
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    bias: bool = True

    def __post_init__(self):
        try:  # whole numbers only: an uploaded meta's "2441" or 4.7 is refused, not read as sizes
            if isinstance(self.layers, str | bytes) or any(
                    isinstance(d, bool) for d in self.layers):
                raise TypeError
            object.__setattr__(self, "layers", tuple(operator.index(d) for d in self.layers))
        except TypeError:
            raise ValueError(
                f"layers must be a list of whole numbers, got {self.layers!r}") from None
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers must be at least two positive sizes, got {self.layers}")
        if self.layers[-1] != 1:
            raise ValueError(f"the output layer must have 1 unit, got {self.layers[-1]}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {self.output_activation!r}")

    def shapes(self):
        """Return [(name, shape)] of one network's weight arrays, in the order of theta."""
        shapes = []
        for i, (d_in, d_out) in enumerate(itertools.pairwise(self.layers)):
            shapes.append((f"W{i}", (d_in, d_out)))
            if self.bias:
                shapes.append((f"b{i}", (d_out,)))
        return shapes

    def to_dict(self):
        """Return the architecture as JSON-able metadata."""
        return {**asdict(self), "layers": list(self.layers)}


@functools.cache
def count_params(arch):
    """Return the number of weights and biases of one network of the architecture."""
    return sum(math.prod(shape) for _, shape in arch.shapes())


def count_networks(arch, theta):
    """Return how many networks the flat vector theta holds; raise ValueError if not whole."""
    m, rest = divmod(theta.size, count_params(arch))
    if rest or not m or theta.ndim != 1:
        raise ValueError(f"theta has {theta.size} values, not a whole number of networks "
                         f"of {count_params(arch)}")
    return m


def params_from_theta(arch, theta):
    """Return params whose Wb, WbT (each network's [W; b]^T: (m, d_out, d_in + 1)), W and b
    view theta; params["m"] is the number of networks."""
    m, start = count_networks(arch, theta), 0
    params = {"theta": theta, "m": m, "Wb": [], "WbT": [], "W": [], "b": []}
    for d_in, d_out in itertools.pairwise(arch.layers):
        rows = d_in + arch.bias
        Wb = theta[start : start + rows * m * d_out].reshape(rows, m, d_out)
        params["Wb"].append(Wb)
        params["WbT"].append(Wb.transpose(1, 2, 0))  # (m, d_out, d_in + 1)
        params["W"].append(Wb[:d_in].transpose(1, 0, 2))
        if arch.bias:
            params["b"].append(Wb[d_in])
        start += rows * m * d_out
    return params


def init_params(arch, rng, dtype=np.float64, m=1):
    """Return m networks with Xavier/Glorot-uniform weights and zero biases, drawn in turn."""
    params = params_from_theta(arch, np.zeros(m * count_params(arch), dtype=dtype))
    for k in range(m):
        for W in params["W"]:
            limit = math.sqrt(6.0 / sum(W.shape[1:]))
            W[k] = rng.uniform(-limit, limit, size=W.shape[1:])
    return params


def take(arch, theta, rows):
    """Return the flat vector of the networks numbered rows (in that order) of the stack theta."""
    return np.concatenate([Wb[:, rows].ravel() for Wb in params_from_theta(arch, theta)["Wb"]])


def join(arch, thetas):
    """Return the flat vector of one stack of the networks of every stack in thetas, in order."""
    stacks = [params_from_theta(arch, theta)["Wb"] for theta in thetas]
    return np.concatenate([np.concatenate(layer, axis=1).ravel()
                           for layer in zip(*stacks, strict=True)])


def spread(arch, values, biases=True):
    """Return a vector shaped like theta holding values[k] at each weight of network k.

    Biases get values[k] as well, or 0 when biases is False."""
    values = np.asarray(values)
    theta = np.zeros(len(values) * count_params(arch), values.dtype)
    params = params_from_theta(arch, theta)
    for W in params["W"]:
        W[...] = values[:, None, None]
    for b in params["b"] if biases else ():
        b[...] = values[:, None]
    return theta


def float_layers(arch, params):
    """Return the weights of a stack of one as Python floats for forward_floats: per layer,
    the activation and each unit's (weights, bias)."""
    layers, last = [], len(params["WbT"]) - 1
    for i, WbT in enumerate(params["WbT"]):
        rows = WbT[0].tolist()
        units = [(row[:-1], row[-1]) for row in rows] if arch.bias else [(row, 0.0) for row in rows]
        f = ON_FLOATS[arch.output_activation if i == last else arch.activation]
        layers.append((f, units))
    return layers


def forward_floats(layers, rows):
    """Return the output of each row (a pair of floats) of the network in layers, as floats.

    forward's arithmetic on Python floats, for a few rows, where NumPy's calls cost more
    than the work: z = a W + b (the products added in order, then the bias), a = f(z)."""
    out = []
    for a in rows:
        for f, units in layers:
            a = [f(sum(map(operator.mul, a, w)) + b) for w, b in units]
        out.append(a[0])
    return out
