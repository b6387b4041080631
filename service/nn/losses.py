"""Losses of a stack of networks, each network's averaged over its rows (mean, not sum).

Shapes: ``z`` and ``a`` are the output layer's pre-activation and activation, ``(1, m, n)``
for m networks; ``y`` the labels, ``(1, m, n)`` or ``(1, 1, n)`` when shared. A loss
returns each network's sum over its rows, ``(1, m)``: the rows of a batch come in blocks,
whose sums add up before one division. It works in ``t`` and ``u``, two scratch arrays
shaped like ``z``. Each loss has the gradient that starts
back-propagation: for the MSE it is dL/da, for binary cross-entropy dL/dz, because that is
computed from the logit ``z`` of a sigmoid output so that saturated outputs give finite
losses and gradients. Both gradients are the same expression, the mean residual
(a - y) / n, where ``n`` is the number of rows the mean runs over: a block of a batch
divides by the batch's rows. Like the activations, a gradient is returned as the NumPy
calls that compute it.
"""

import numpy as np


def mse(z, a, y, t, u):
    """Return the sums over rows of 0.5 (a - y)^2, the lab's loss."""
    np.subtract(a, y, t)
    return 0.5 * np.add.reduce(np.multiply(t, t, t), axis=-1)


def bce(z, a, y, t, u):
    """Return the sums over rows of -y log sigma(z) - (1 - y) log(1 - sigma(z)).

    That is softplus(z) - y z, with softplus(z) = max(z, 0) + log1p(e^-|z|), which never
    overflows (np.logaddexp computes the same, several times slower)."""
    np.log1p(np.exp(np.negative(np.abs(z, t), t), t), t)
    np.add(t, np.maximum(z, 0.0, out=u), t)
    np.subtract(t, np.multiply(y, z, u), t)
    return np.add.reduce(t, axis=-1)


def mean_residual(a, y, out, inv_n):
    """The calls of (a - y) * inv_n into out: dL/da of the MSE, dL/dz of bce (a = sigma(z))."""
    return [(np.subtract, (a, y, out)), (np.multiply, (out, inv_n, out))]


# name -> (loss, gradient, what the gradient is taken with respect to)
LOSSES = {
    "mse": (mse, mean_residual, "a"),
    "bce": (bce, mean_residual, "z"),
}

# bce is defined on a sigmoid output's logit; an identity output has no logit.
LOSS_OUTPUTS = {"mse": ("sigmoid", "identity"), "bce": ("sigmoid",)}
