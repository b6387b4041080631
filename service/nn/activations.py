"""Activation functions, each beside its derivative.

Every derivative takes both the pre-activation ``z`` and the activation
``a = f(z)`` and uses whichever is cheaper, so the backward pass never
recomputes the forward one. Each function writes into ``out`` when given
(training reuses its arrays from epoch to epoch), else into a new array.
"""

import numpy as np

LEAKY_SLOPE = 0.01


def sigmoid(z, out=None):
    """Return 1 / (1 + e^-z), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    a = np.multiply(z, 0.5, out=out)
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def sigmoid_grad(z, a, out=None):
    """Return sigma'(z) = a (1 - a)."""
    g = np.subtract(1.0, a, out=out)
    g *= a
    return g


def tanh(z, out=None):
    """Return tanh(z)."""
    return np.tanh(z, out=out)


def tanh_grad(z, a, out=None):
    """Return tanh'(z) = 1 - a^2."""
    g = np.multiply(a, a, out=out)
    np.subtract(1.0, g, out=g)
    return g


def relu(z, out=None):
    """Return max(z, 0)."""
    return np.maximum(z, 0.0, out=out)


def relu_grad(z, a, out=None):
    """Return 1 where z > 0, else 0 (the step function H(z) with H(0) = 0)."""
    return np.heaviside(z, 0.0, out=out)


def leaky_relu(z, out=None):
    """Return z where z > 0, else LEAKY_SLOPE * z: that is max(z, LEAKY_SLOPE * z)."""
    a = np.multiply(z, LEAKY_SLOPE, out=out)
    np.maximum(z, a, out=a)
    return a


def leaky_relu_grad(z, a, out=None):
    """Return 1 where z > 0, else LEAKY_SLOPE."""
    g = np.heaviside(z, 0.0, out=out)
    g *= 1.0 - LEAKY_SLOPE
    g += LEAKY_SLOPE
    return g


def identity(z, out=None):
    """Return z unchanged (the lab's "no activation"), copied into out when given."""
    if out is None:
        return z
    np.copyto(out, z)
    return out


def identity_grad(z, a, out=None):
    """Return 1: multiplying by it changes nothing, so the scalar serves."""
    return 1.0


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "identity": (identity, identity_grad),
}

OUTPUT_ACTIVATIONS = ("sigmoid", "identity")
