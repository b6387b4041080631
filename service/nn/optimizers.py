"""Optimizers over the flat weight vector ``theta`` and its gradient ``g``.

Each optimizer is a pair: ``*_init(theta, hp) -> state`` (a plain dict of arrays
and counters) and ``*_step(theta, g, state, hp)`` which updates ``theta`` in
place; ``hp`` holds the hyper-parameters (learning_rate, momentum, beta1,
beta2, eps). A step's constants are kept in the state as 0-d arrays of theta's
dtype, which NumPy takes faster than Python floats (see activations.py).
"""

import numpy as np


def sgd_init(theta, hp):
    """Return the state of plain gradient descent: the learning rate and a buffer for the step."""
    return {"lr": np.array(hp.learning_rate, theta.dtype), "step": np.empty_like(theta)}


def sgd_step(theta, g, state, hp):
    """theta <- theta - lr g."""
    step = np.multiply(g, state["lr"], state["step"])
    np.subtract(theta, step, theta)


def momentum_init(theta, hp):
    """Return a zero velocity, with the constants and a buffer of the step."""
    return {"v": np.zeros_like(theta), "step": np.empty_like(theta),
            "lr": np.array(hp.learning_rate, theta.dtype), "mu": np.array(hp.momentum, theta.dtype)}


def momentum_step(theta, g, state, hp):
    """v <- mu v - lr g; theta <- theta + v."""
    v = state["v"]
    np.multiply(v, state["mu"], v)
    np.subtract(v, np.multiply(g, state["lr"], state["step"]), v)
    np.add(theta, v, theta)


def adam_init(theta, hp):
    """Return zero first and second moments and step count 0."""
    return {"m": np.zeros_like(theta), "v": np.zeros_like(theta), "t": 0}


def adam_step(theta, g, state, hp):
    """Adam (Kingma & Ba 2015) with bias-corrected moments."""
    m, v = state["m"], state["v"]
    state["t"] = t = state["t"] + 1
    m *= hp.beta1
    m += (1.0 - hp.beta1) * g
    v *= hp.beta2
    v += (1.0 - hp.beta2) * (g * g)
    # lr_t folds both bias corrections into one scalar (Algorithm 1, last line).
    lr_t = hp.learning_rate * (1.0 - hp.beta2**t) ** 0.5 / (1.0 - hp.beta1**t)
    eps_t = hp.eps * (1.0 - hp.beta2**t) ** 0.5
    theta -= lr_t * m / (np.sqrt(v) + eps_t)


OPTIMIZERS = {
    "sgd": (sgd_init, sgd_step),
    "momentum": (momentum_init, momentum_step),
    "adam": (adam_init, adam_step),
}
