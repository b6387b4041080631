"""Activation functions, each beside its derivative, as the NumPy calls that compute them.

Each function returns a plan: the list of ``(numpy_function, args)`` calls that
write f(z), or f'(z), into ``out``; ``run`` makes them. Training builds the plan
of a whole pass once and replays it every epoch (passes.py), because a small
network's arrays are tiny and a NumPy call costs mostly its overhead; ``apply``
computes an activation once. Every derivative takes both the pre-activation
``z`` and the activation ``a = f(z)`` and uses whichever is cheaper, so the
backward pass never recomputes the forward one; a derivative that is 1
everywhere returns None (nothing to multiply by).

Constants are 0-d arrays of the operand's dtype: NumPy takes one in about half
the time of a Python float; ``out`` goes by position, except to np.maximum, which
takes it only by keyword.

ON_FLOATS holds each activation again on one Python float, the same arithmetic in the
same order, for predictions of a few points (network.forward_floats).
"""

import functools
import math

import numpy as np

LEAKY_SLOPE = 0.01


def constant(value):
    """Return {dtype: value as a 0-d array of that dtype} for the float dtypes training uses."""
    return {np.dtype(t): np.array(value, t) for t in (np.float64, np.float32)}


ZERO, ONE = constant(0.0), constant(1.0)
SLOPE, STEP = constant(LEAKY_SLOPE), constant(1.0 - LEAKY_SLOPE)


def run(calls):
    """Make the NumPy calls of a plan, in order."""
    for f, args in calls:
        f(*args)


def apply(f, z):
    """Return the activation f of the array z, in a new array."""
    out = np.empty_like(z)
    run(f(z, out))
    return out


def sigmoid(z, out):
    """1 / (1 + e^-z). Below z = -709, e^-z overflows to inf in float64 and the result is 0,
    as it should be (callers silence the overflow warning). Unlike (1 + tanh(z/2)) / 2 it
    keeps tiny probabilities to their last bits, at the same speed."""
    one = ONE[z.dtype]
    return [(np.negative, (z, out)), (np.exp, (out, out)), (np.add, (out, one, out)),
            (np.divide, (one, out, out))]


def sigmoid_grad(z, a, out):
    """sigma'(z) = a (1 - a)."""
    return [(np.subtract, (ONE[a.dtype], a, out)), (np.multiply, (out, a, out))]


def tanh(z, out):
    """tanh(z)."""
    return [(np.tanh, (z, out))]


def tanh_grad(z, a, out):
    """tanh'(z) = 1 - a^2."""
    return [(np.multiply, (a, a, out)), (np.subtract, (ONE[a.dtype], out, out))]


def relu(z, out):
    """max(z, 0)."""
    return [(functools.partial(np.maximum, out=out), (z, ZERO[z.dtype]))]


def relu_grad(z, a, out):
    """1 where z > 0, else 0 (the step function H(z) with H(0) = 0)."""
    return [(np.heaviside, (z, ZERO[z.dtype], out))]


def leaky_relu(z, out):
    """z where z > 0, else LEAKY_SLOPE * z: that is max(z, LEAKY_SLOPE * z)."""
    return [(np.multiply, (z, SLOPE[z.dtype], out)),
            (functools.partial(np.maximum, out=out), (z, out))]


def leaky_relu_grad(z, a, out):
    """1 where z > 0, else LEAKY_SLOPE."""
    return [(np.heaviside, (z, ZERO[z.dtype], out)), (np.multiply, (out, STEP[z.dtype], out)),
            (np.add, (out, SLOPE[z.dtype], out))]


def identity(z, out):
    """z unchanged (the lab's "no activation"), copied into out."""
    return [(np.copyto, (out, z))]


def identity_grad(z, a, out):
    """1 everywhere: None, as multiplying by it changes nothing."""
    return None


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "identity": (identity, identity_grad),
}

OUTPUT_ACTIVATIONS = ("sigmoid", "identity")

def sigmoid_float(z):
    """sigmoid on one float: 1 / (1 + e^-z), and e^z where e^-z would overflow (< 1e-304)."""
    return 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else math.exp(z)


ON_FLOATS = {
    "sigmoid": sigmoid_float,
    "tanh": math.tanh,
    "relu": lambda z: max(z, 0.0),  # max keeps a NaN first argument, as np.maximum does
    "leaky_relu": lambda z: max(z, LEAKY_SLOPE * z),
    "identity": lambda z: z,
}
