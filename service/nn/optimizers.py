"""Optimizers over the flat weight vector ``theta`` of a stack and its gradient ``g``.

Each optimizer is a pair: ``*_init(theta, lr, hp) -> state`` (a plain dict of arrays and
counters) and ``*_step(theta, g, state)`` which updates ``theta`` in place. ``lr`` holds
each weight's learning rate, shaped like theta (network.spread): networks trained side by
side each keep their own. ``hp`` holds the constants the networks share (momentum, beta1,
beta2, eps). A step's constants are kept in the state as 0-d arrays of theta's dtype, which
NumPy takes faster than Python floats (see activations.py). Every array of a state shaped
like theta belongs to the networks as theta does (training.py keeps the rows of those still
training).

Weight decay is the gradient of the penalty (l2 / 2) sum(W^2) over the weights (not the
biases), added to g before any optimizer's step: add_weight_decay.
"""

import numpy as np


def add_weight_decay(theta, g, decay, buf):
    """g <- g + decay theta: decay holds l2 at each weight and 0 at each bias."""
    np.add(g, np.multiply(theta, decay, buf), g)


def sgd_init(theta, lr, hp):
    """Return the state of plain gradient descent: the learning rates and a buffer for the step."""
    return {"lr": lr, "step": np.empty_like(theta)}


def sgd_step(theta, g, state):
    """theta <- theta - lr g."""
    np.subtract(theta, np.multiply(g, state["lr"], state["step"]), theta)


def momentum_init(theta, lr, hp):
    """Return a zero velocity, with the constants and a buffer of the step."""
    return {"v": np.zeros_like(theta), "step": np.empty_like(theta), "lr": lr,
            "mu": np.array(hp.momentum, theta.dtype)}


def momentum_step(theta, g, state):
    """v <- mu v - lr g; theta <- theta + v."""
    v = state["v"]
    np.multiply(v, state["mu"], v)
    np.subtract(v, np.multiply(g, state["lr"], state["step"]), v)
    np.add(theta, v, theta)


def adam_init(theta, lr, hp):
    """Return zero first and second moments, step count 0, the constants and buffers."""
    const = {name: np.array(value, theta.dtype) for name, value in (
        ("beta1", hp.beta1), ("beta2", hp.beta2), ("rest1", 1.0 - hp.beta1),
        ("rest2", 1.0 - hp.beta2))}
    return {"m": np.zeros_like(theta), "v": np.zeros_like(theta), "t": 0, "lr": lr,
            "lr_t": np.empty_like(theta), "step": np.empty_like(theta),
            "den": np.empty_like(theta), "hp": (hp.beta1, hp.beta2, hp.eps), **const}


def adam_step(theta, g, state):
    """Adam (Kingma & Ba 2015) with bias-corrected moments."""
    m, v, step, den, lr_t = state["m"], state["v"], state["step"], state["den"], state["lr_t"]
    state["t"] = t = state["t"] + 1
    beta1, beta2, eps = state["hp"]
    np.multiply(m, state["beta1"], m)
    np.add(m, np.multiply(g, state["rest1"], step), m)
    np.multiply(v, state["beta2"], v)
    np.add(v, np.multiply(np.multiply(g, g, step), state["rest2"], step), v)
    # lr_t folds both bias corrections into the rate (Algorithm 1, last line).
    correction = (1.0 - beta2**t) ** 0.5
    np.add(np.sqrt(v, den), np.array(eps * correction, theta.dtype), den)
    np.multiply(state["lr"], np.array(correction / (1.0 - beta1**t), theta.dtype), lr_t)
    np.subtract(theta, np.divide(np.multiply(m, lr_t, step), den, step), theta)


OPTIMIZERS = {
    "sgd": (sgd_init, sgd_step),
    "momentum": (momentum_init, momentum_step),
    "adam": (adam_init, adam_step),
}
