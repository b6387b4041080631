"""Losses over a batch, each averaged over the batch (mean, not sum).

Shapes: ``z`` and ``a`` are the output layer's pre-activation and activation,
``y`` the labels, all ``(n, 1)``. Each loss has the gradient that starts
back-propagation: for the MSE it is dL/da, for binary cross-entropy dL/dz,
because that is computed from the logit ``z`` of a sigmoid output so that
saturated outputs give finite losses and gradients. Both gradients are the
same expression, the mean residual (a - y) / n, where ``n`` is the number of
rows the mean runs over: a block of a batch divides by the batch's rows. Like
the activations, a gradient is returned as the NumPy calls that compute it.
"""

import numpy as np


def mse(z, a, y):
    """Return L = mean(0.5 (a - y)^2), the lab's loss."""
    e = (a - y).ravel()
    return 0.5 * float(e @ e) / e.size


def bce(z, a, y):
    """Return mean(-y log sigma(z) - (1 - y) log(1 - sigma(z))) = mean(softplus(z) - y z)."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


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
