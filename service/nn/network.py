"""A stack of dense layers: initialisation, forward and backward.

Shapes: ``x: (n, d_0)``; layer i has ``W[i]: (d_i, d_{i+1})`` and
``b[i]: (d_{i+1},)``; the output is ``(n, 1)``.

All weights live in one flat vector ``params["theta"]``; ``params["W"]`` and
``params["b"]`` are views into it. A layer's W and b are consecutive, so its block
``params["Wb"][i]`` is the augmented matrix ``[W; b]: (d_i + 1, d_{i+1})`` and
``z = [a, 1] [W; b] = a W + b`` is one product (without biases, Wb[i] is W[i] and
there is no column of ones). Gradients have the same layout: backward writes
``[dW; db]`` with one product, and an optimizer updates every layer with a few
NumPy calls on two vectors.

forward and backward work in a Workspace, the arrays of one block size allocated
once, so that they allocate nothing themselves (batches.py cuts a batch into
blocks). Its arrays are column-major, which keeps the activations without their
column of ones contiguous. Products use np.dot, the
cheapest call on small arrays; it writes only row-major arrays, so a product into
a column-major array is written as its transpose, (A B)^T = B^T A^T.

Each pass is a plan: the list of NumPy calls on the workspace's arrays and the
weights' views (see activations.py), built the first time a workspace meets those
weights and replayed after. Weights are updated in place, so the views stay
valid; for a small network the replay costs little more than the calls themselves.

forward_floats computes forward for a few rows on Python floats instead: at one
row, forward's 15 NumPy calls cost more than the arithmetic they do.
"""

import functools
import itertools
import math
import operator
from dataclasses import asdict, dataclass

import numpy as np

from .activations import ACTIVATIONS, ON_FLOATS, OUTPUT_ACTIVATIONS, run
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
    """Return params whose Wb = [W; b], its transpose WbT, W and b are views into theta."""
    if theta.size != count_params(arch):
        raise ValueError(f"theta has {theta.size} values, the architecture needs "
                         f"{count_params(arch)}")
    params, start = {"theta": theta, "Wb": [], "WbT": [], "W": [], "b": []}, 0
    for d_in, d_out in itertools.pairwise(arch.layers):
        rows = d_in + arch.bias
        Wb = theta[start : start + rows * d_out].reshape(rows, d_out)
        params["Wb"].append(Wb)
        params["WbT"].append(Wb.T)
        params["W"].append(Wb[:d_in])
        if arch.bias:
            params["b"].append(Wb[d_in])
        start += rows * d_out
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


class Workspace:
    """The arrays of forward and backward for blocks of n rows, and each layer's activation.

    a1[i]: (n, d_i + 1) is layer i's input [a, 1], its last column ones (no such
    column without biases); a[i] is the view without the ones: a[0] holds the rows
    x, y their labels, a[-1] the output (n, 1). z[i] and dz[i] = dL/dz[i] are
    (n, d_{i+1}); a1T, zT and dzT are the transposed views the products write through;
    activations[i] is layer i's (f, f_grad); grads holds a block's gradient while
    a batch's are added up. Back-propagation overwrites each z with f'(z) once it
    has used it, which saves one array per layer: measure the loss before. plans
    keeps each pass's plan, by gradient, for the last weights it met.
    """

    def __init__(self, arch, n, dtype=np.float64):
        sizes, ones = arch.layers, int(arch.bias)
        hidden, output = ACTIVATIONS[arch.activation], ACTIVATIONS[arch.output_activation]
        self.activations = [hidden] * (len(sizes) - 2) + [output]
        self.a1 = [np.ones((n, d + ones), dtype, order="F") for d in sizes[:-1]]
        self.a1.append(np.empty((n, 1), dtype))
        self.a = [a1[:, :d] for a1, d in zip(self.a1, sizes, strict=True)]
        self.z = [np.empty((n, d), dtype, order="F") for d in sizes[1:]]
        self.a1T, self.zT = [a1.T for a1 in self.a1], [z.T for z in self.z]
        self.y = np.empty((n, 1), dtype)
        self.arch, self.plans = arch, {}

    @functools.cached_property
    def dz(self):
        """The dL/dz of each layer, made on the first backward pass (predictions need none)."""
        return [np.empty_like(z) for z in self.z]

    @functools.cached_property
    def dzT(self):
        """The transposed views of dz."""
        return [dz.T for dz in self.dz]

    @functools.cached_property
    def grads(self):
        """A block's gradient, made when a batch of several blocks is first added up."""
        return params_from_theta(self.arch, np.zeros(count_params(self.arch), self.z[0].dtype))

    def load(self, x, y=None):
        """Copy the rows x (n, d_0) into the input layer and their labels y (n, 1); return self."""
        self.a[0][...] = x
        if y is not None:
            self.y[...] = y
        return self

    def plan(self, build, params, grads=None, spec=None):
        """Return build(self, params, grads, spec): a pass's calls, kept while they still apply.

        They apply while the weights (and gradients) are the same objects and spec is equal.
        """
        key = (build, id(grads))  # a batch of several blocks alternates two gradients
        kept = self.plans.get(key)
        if kept is None or kept[0] is not params or kept[1] is not grads or kept[2] != spec:
            kept = self.plans[key] = (params, grads, spec, build(self, params, grads, spec))
        return kept[3]


def forward(params, work):
    """Return y_hat (n, 1) for the rows loaded in work, leaving every z and a in work."""
    run(work.plan(forward_calls, params))
    return work.a[-1]


def forward_calls(work, params, grads=None, spec=None):
    """Return the calls of forward."""
    calls = []
    for i, (f, _) in enumerate(work.activations):
        calls.append((np.dot, (params["WbT"][i], work.a1T[i], work.zT[i])))  # z = [a, 1] [W; b]
        calls += f(work.z[i], work.a[i + 1])
    return calls


def float_layers(arch, params):
    """Return the weights as Python floats for forward_floats: per layer, the activation
    and each unit's (weights, bias)."""
    layers, last = [], len(params["WbT"]) - 1
    for i, WbT in enumerate(params["WbT"]):
        rows = WbT.tolist()
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


def gradient(params, work, loss, grads, n=None):
    """Fill grads (same layout as params) with the gradient of the named loss after forward.

    The loss is the mean over n rows (default: the rows in work), of which work holds
    some, with their labels in work.y.
    """
    run(work.plan(gradient_calls, params, grads, (loss, n or len(work.y))))
    return grads


def gradient_calls(work, params, grads, spec):
    """Return the calls of gradient: the output layer's dL/dz, then back-propagation."""
    (loss, n), z, dz, dzT, W = spec, work.z, work.dz, work.dzT, params["W"]
    _, loss_grad, wrt = LOSSES[loss]
    calls = loss_grad(work.a[-1], work.y, dz[-1], np.array(1.0 / n, dz[-1].dtype))
    if wrt == "a":
        calls += _times_grad(work.activations[-1], z[-1], work.a[-1], dz[-1])
    for i in range(len(W) - 1, -1, -1):
        calls.append((np.dot, (work.a1T[i], dz[i], grads["Wb"][i])))  # [dW; db] = [a, 1]^T dz
        if i:
            calls.append((np.dot, (W[i], dzT[i], dzT[i - 1])))  # dL/da = dz W^T, transposed
            calls += _times_grad(work.activations[i - 1], z[i - 1], work.a[i], dz[i - 1])
    return calls


def _times_grad(activation, z, a, dz):
    """Return the calls of dz *= f'(z), which overwrite z with f'(z)."""
    grad = activation[1](z, a, z)
    return [] if grad is None else grad + [(np.multiply, (dz, z, dz))]


def loss_value(work, loss):
    """Return the named loss of the output in work against its labels work.y."""
    return LOSSES[loss][0](work.z[-1], work.a[-1], work.y)
