"""Activation functions, each beside its derivative.

Every derivative takes both the pre-activation ``z`` and the activation
``a = f(z)`` and uses whichever is cheaper, so the backward pass never
recomputes the forward one.
"""

import numpy as np

LEAKY_SLOPE = 0.01


def sigmoid(z):
    """Return 1 / (1 + e^-z), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    a = z * 0.5  # one new array, then in place: fresh arrays cost page faults at large n
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def sigmoid_grad(z, a):
    """Return sigma'(z) = a (1 - a)."""
    g = 1.0 - a
    g *= a
    return g


def tanh(z):
    """Return tanh(z)."""
    return np.tanh(z)


def tanh_grad(z, a):
    """Return tanh'(z) = 1 - a^2."""
    return 1.0 - a * a


def relu(z):
    """Return max(z, 0)."""
    return np.maximum(z, 0.0)


def relu_grad(z, a):
    """Return 1 where z > 0, else 0."""
    return (z > 0).astype(z.dtype)


def leaky_relu(z):
    """Return z where z > 0, else LEAKY_SLOPE * z."""
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_grad(z, a):
    """Return 1 where z > 0, else LEAKY_SLOPE."""
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


def identity(z):
    """Return z unchanged (the lab's "no activation")."""
    return z


def identity_grad(z, a):
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
