"""Forward and backward over a stack of networks, as plans of NumPy calls replayed every epoch.

Shapes: a Workspace holds blocks of n rows for m networks (network.py's stack). Layer
i's input is ``a1[i]: (d_i + 1, m, n)``, its last row ones (no such row without
biases), and ``a[i]`` the view without them; ``z[i]`` and ``dz[i] = dL/dz[i]`` are
``(d_{i+1}, m, n)``; the labels are ``y: (1, m, n)``. Units outermost, rows innermost:
every activation runs over contiguous memory however many networks there are. When all
networks see the same rows (full batches, predictions), ``a1[0]`` is ``(d_0 + 1, n)``,
loaded once for all of them; ``y`` holds each network's copy of the labels even then, so
that the residual ``a - y`` runs over contiguous memory instead of broadcasting row by row.

Each product is one np.matmul over the stack: network k's matrices are strided views
(``Wb[i][:, k]``, ``a1[i][:, k]``), each computed as if it were alone, so a network's
arithmetic does not depend on the networks beside it. A stack of one calls np.dot on the
same views instead, the cheapest call on small arrays (benchmarks/RESULTS.md, "Training":
nnserve against the floor). A product over an inner dimension of 1 (the output unit's
dL/da) is a broadcast multiply over a stack: one rounding per element, as np.dot's.

forward and gradient allocate nothing: each pass is a plan, the list of NumPy calls on
the workspace's arrays and the weights' views (see activations.py), built the first time a
workspace meets those weights and replayed after. Optimizers update theta in place, so the
views stay valid; for a small network the replay costs little more than the calls themselves.
"""

import functools

import numpy as np

from .activations import ACTIVATIONS, run
from .losses import LOSSES
from .network import count_params, params_from_theta


class Workspace:
    """The arrays of forward and backward for m networks on blocks of n rows.

    shared: every network sees the same rows. activations[i] is layer i's (f, f_grad);
    back-propagation overwrites each z with f'(z) once it has used it, which saves one array
    per layer: measure the loss before. plans keeps each pass's plan for the last weights met.
    """

    def __init__(self, arch, m, n, dtype=np.float64, shared=True):
        sizes, ones = arch.layers, int(arch.bias)
        hidden, output = ACTIVATIONS[arch.activation], ACTIVATIONS[arch.output_activation]
        self.activations = [hidden] * (len(sizes) - 2) + [output]
        first = (sizes[0] + ones, n) if shared else (sizes[0] + ones, m, n)
        self.a1 = [np.ones(first, dtype)] + [np.ones((d + ones, m, n), dtype) for d in sizes[1:-1]]
        self.a1.append(np.empty((1, m, n), dtype))
        self.a = [a1[:d] for a1, d in zip(self.a1, sizes, strict=True)]
        self.z = [np.empty((d, m, n), dtype) for d in sizes[1:]]
        self.y = np.empty((1, m, n), dtype)
        self.arch, self.m, self.n, self.plans = arch, m, n, {}

    @functools.cached_property
    def dz(self):
        """The dL/dz of each layer, made on the first backward pass (predictions need none)."""
        return [np.empty_like(z) for z in self.z]

    @functools.cached_property
    def scratch(self):
        """Two arrays shaped like the output, and two of booleans (hits, labels), for measuring."""
        out = self.z[-1]
        return (np.empty_like(out), np.empty_like(out), np.empty(out.shape, bool),
                np.empty(self.y.shape, bool))

    @functools.cached_property
    def grads(self):
        """A block's gradient, made when a batch of several blocks is first added up."""
        return params_from_theta(self.arch, np.zeros(self.m * count_params(self.arch),
                                                     self.z[0].dtype))

    def load(self, x, y=None):
        """Copy rows into the input layer, with their labels: x (n, d_0) and y (n,) when
        shared, else x (m, n, d_0) and y (m, n), each network's own; return self."""
        self.a[0][...] = x.T if x.ndim == 2 else x.transpose(2, 0, 1)
        if y is not None:
            self.y[0] = y
        return self

    def plan(self, build, params, grads=None, spec=None):
        """Return build(self, params, grads, spec): a pass's calls, kept while they still apply.

        They apply while the weights (and gradients) are the same objects and spec is equal.
        """
        # Fast path (benchmarks/RESULTS.md, "Training": nnserve fit() against the floor):
        # a replayed plan, not the calls made anew each epoch.
        key = (build, id(grads))  # a batch of several blocks alternates two gradients
        kept = self.plans.get(key)
        if kept is None or kept[0] is not params or kept[1] is not grads or kept[2] != spec:
            kept = self.plans[key] = (params, grads, spec, build(self, params, grads, spec))
        return kept[3]


def _stacked(A, B, C):
    """Return the call of C[k] = A[k] B[k] for each network k: (m, ., .) views, A or B 2-D
    when every network shares it."""
    if C.shape[0] == 1:
        return (np.dot, tuple(t[0] if t.ndim == 3 else t for t in (A, B, C)))
    return (np.matmul, (A, B, C))


def _networks_first(a):
    """Return the view (m, d, n) of a (d, m, n) array; a shared (d, n) one stays as it is."""
    return a.transpose(1, 0, 2) if a.ndim == 3 else a


def forward(params, work):
    """Return y_hat (1, m, n) for the rows loaded in work, leaving every z and a in work."""
    run(work.plan(forward_calls, params))
    return work.a[-1]


def forward_calls(work, params, grads=None, spec=None):
    """Return the calls of forward: z = [a, 1] [W; b], a = f(z), layer by layer."""
    calls = []
    for i, (f, _) in enumerate(work.activations):
        calls.append(_stacked(params["WbT"][i], _networks_first(work.a1[i]),
                              _networks_first(work.z[i])))
        calls += f(work.z[i], work.a[i + 1])
    return calls


def gradient(params, work, loss, grads, n=None):
    """Fill grads (same layout as params) with the gradient of the named loss after forward.

    The loss is each network's mean over n rows (default: the rows in work), of which work
    holds some, with their labels in work.y.
    """
    run(work.plan(gradient_calls, params, grads, (loss, n or work.n)))
    return grads


def gradient_calls(work, params, grads, spec):
    """Return the calls of gradient: the output layer's dL/dz, then back-propagation."""
    (loss, n), z, dz, Wb = spec, work.z, work.dz, params["Wb"]
    _, loss_grad, wrt = LOSSES[loss]
    calls = loss_grad(work.a[-1], work.y, dz[-1], np.array(1.0 / n, dz[-1].dtype))
    if wrt == "a":
        calls += _times_grad(work.activations[-1], z[-1], work.a[-1], dz[-1])
    for i in range(len(Wb) - 1, -1, -1):
        # [dW; db] = [a, 1]^T dz, for each network
        calls.append(_stacked(_networks_first(work.a1[i]), dz[i].transpose(1, 2, 0),
                              _networks_first(grads["Wb"][i])))
        if i:
            calls.append(_back(Wb[i][:-1] if work.arch.bias else Wb[i], dz[i], dz[i - 1]))
            calls += _times_grad(work.activations[i - 1], z[i - 1], work.a[i], dz[i - 1])
    return calls


def _back(W, dz, out):
    """Return the call of dL/da = dz W^T, written transposed: out = W dz for each network."""
    if W.shape[2] == 1 < W.shape[1]:  # one unit: an outer product, W[:, k, 0] times dz[0, k]
        return (np.multiply, (W, dz, out))
    return _stacked(*map(_networks_first, (W, dz, out)))


def _times_grad(activation, z, a, dz):
    """Return the calls of dz *= f'(z), which overwrite z with f'(z)."""
    grad = activation[1](z, a, z)
    return [] if grad is None else grad + [(np.multiply, (dz, z, dz))]


def loss_sums(work, loss):
    """Return each network's named loss summed over the rows in work, as an (m,) array."""
    t, u = work.scratch[:2]
    return LOSSES[loss][0](work.z[-1], work.a[-1], work.y, t, u)[0]


def right_counts(work, threshold=0.5):
    """Return how many rows in work each network labels right (output >= threshold)."""
    hit, truth = work.scratch[2], work.scratch[3]
    np.greater(work.y, 0.5, truth)
    np.equal(np.greater_equal(work.a[-1], threshold, hit), truth, hit)
    return np.add.reduce(hit, axis=-1, dtype=np.intp)[0]
