"""Losses over a batch, each averaged over the batch (mean, not sum).

Shapes: ``z`` and ``a`` are the output layer's pre-activation and activation,
``y`` the labels, all ``(n, 1)``. Each ``*_grad`` returns the gradient that
starts back-propagation: ``mse_grad`` is dL/da, ``bce_grad`` is dL/dz, because
binary cross-entropy is computed from the logit ``z`` of a sigmoid output so
that saturated outputs give finite losses and gradients. A gradient's ``n`` is
the number of rows the mean runs over (default ``len(a)``): a block of a batch
divides by the batch's rows.
"""

import numpy as np


def mse(z, a, y):
    """Return L = mean(0.5 (a - y)^2), the lab's loss."""
    e = (a - y).ravel()
    return 0.5 * float(e @ e) / e.size


def mse_grad(z, a, y, out=None, n=None):
    """Return dL/da = (a - y) / n, written into out when given; n defaults to len(a)."""
    g = np.subtract(a, y, out=out)
    g *= 1.0 / (n or len(a))
    return g


def bce(z, a, y):
    """Return mean(-y log sigma(z) - (1 - y) log(1 - sigma(z))) = mean(softplus(z) - y z)."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def bce_grad(z, a, y, out=None, n=None):
    """Return dL/dz = (sigma(z) - y) / n, with a = sigma(z), written into out when given."""
    g = np.subtract(a, y, out=out)
    g *= 1.0 / (n or len(a))
    return g


# name -> (loss, gradient, what the gradient is taken with respect to)
LOSSES = {
    "mse": (mse, mse_grad, "a"),
    "bce": (bce, bce_grad, "z"),
}

# bce is defined on a sigmoid output's logit; an identity output has no logit.
LOSS_OUTPUTS = {"mse": ("sigmoid", "identity"), "bce": ("sigmoid",)}
