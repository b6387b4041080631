"""What nnserve is compared with: a hand-written NumPy floor, PyTorch and scikit-learn.

All of them train the lab's network (2-4-4-1, sigmoid everywhere, with bias) full batch
with plain gradient descent; the floor and PyTorch start from nnserve's initial weights
and use its loss, L = mean(0.5 (y_hat - y)^2), so their final weights can be compared.
Only the benchmarks import PyTorch and scikit-learn; the product never does.
"""

import warnings

import numpy as np

LAYERS = (2, 4, 4, 1)


def floor_fit(x, y, theta, epochs, learning_rate):
    """Return the weights after the lab's training written with the fewest NumPy calls.

    theta is nnserve's flat vector (W0, b0, W1, b1, W2, b2): each layer's W and b are
    consecutive, so [W; b] is one block and [a, 1] @ [W; b] computes a @ W + b. With the
    ones columns kept in preallocated buffers, each layer is one product forward and one
    back, and the update is two calls on the flat vectors: 32 NumPy calls an epoch, each
    in its cheapest form: np.dot, constants as 0-d arrays, ``out`` passed by position,
    transposes taken once.
    """
    n = len(x)
    theta, grad = theta.copy(), np.empty_like(theta)
    (W0, W1, W2), (G0, G1, G2) = _blocks(theta), _blocks(grad)
    V1, V2 = W1[:-1].T, W2[:-1].T  # the weights without their bias rows, transposed
    a0, a1, a2 = np.ones((n, 3)), np.ones((n, 5)), np.ones((n, 5))
    a0[:, :2] = x
    h1, h2, a3 = a1[:, :4], a2[:, :4], np.empty((n, 1))
    t1, t2, g, d1, d2 = (np.empty((n, 4)) for _ in range(5))
    y, e, d3 = y.reshape(-1, 1).astype(np.float64), np.empty((n, 1)), np.empty((n, 1))
    a0T, a1T, a2T = a0.T, a1.T, a2.T
    one, step = np.array(1.0), np.array(learning_rate / n)
    dot, mul, sub, add, div, neg, exp = (np.dot, np.multiply, np.subtract, np.add, np.divide,
                                         np.negative, np.exp)
    for _ in range(epochs):
        # sigmoid(z) = 1 / (1 + e^-z), and sigmoid'(z) = a (1 - a), as nnserve computes them
        dot(a0, W0, t1)
        neg(t1, t1)
        exp(t1, t1)
        add(t1, one, t1)
        div(one, t1, h1)
        dot(a1, W1, t2)
        neg(t2, t2)
        exp(t2, t2)
        add(t2, one, t2)
        div(one, t2, h2)
        dot(a2, W2, a3)
        neg(a3, a3)
        exp(a3, a3)
        add(a3, one, a3)
        div(one, a3, a3)
        # back: dL/dz3 = (a3 - y) a3 (1 - a3), the 1/n folded into the step
        mul(a3, a3, e)
        sub(a3, e, e)
        sub(a3, y, d3)
        mul(d3, e, d3)
        dot(a2T, d3, G2)
        dot(d3, V2, d2)
        sub(one, h2, g)
        mul(g, h2, g)
        mul(d2, g, d2)
        dot(a1T, d2, G1)
        dot(d2, V1, d1)
        sub(one, h1, g)
        mul(g, h1, g)
        mul(d1, g, d1)
        dot(a0T, d1, G0)
        mul(grad, step, grad)
        sub(theta, grad, theta)
    return theta


def _blocks(flat):
    """Return the [W; b] block of each layer: views into flat."""
    blocks, start = [], 0
    for d_in, d_out in zip(LAYERS, LAYERS[1:], strict=False):
        size = (d_in + 1) * d_out
        blocks.append(flat[start : start + size].reshape(d_in + 1, d_out))
        start += size
    return blocks


def torch_net(theta, dtype="float64"):
    """Return the lab's network in PyTorch, starting from nnserve's weights theta."""
    import torch

    torch.set_num_threads(1)
    layers = []
    for block in _blocks(theta):
        linear = torch.nn.Linear(block.shape[0] - 1, block.shape[1], dtype=getattr(torch, dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(block[:-1].T.copy()))
            linear.bias.copy_(torch.from_numpy(block[-1].copy()))
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def torch_theta(net):
    """Return the network's weights as nnserve's flat vector."""
    parts = []
    for linear in net[::2]:
        parts += [linear.weight.detach().numpy().T.ravel(), linear.bias.detach().numpy()]
    return np.concatenate(parts)


def torch_fit(net, x, y, epochs, learning_rate, batch_size=None):
    """Train net with plain SGD on mean(0.5 (y_hat - y)^2); full batch unless batch_size."""
    import torch

    dtype = net[0].weight.dtype
    X = torch.as_tensor(x, dtype=dtype)
    Y = torch.as_tensor(y, dtype=dtype).reshape(-1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate)
    for _ in range(epochs):
        batches = [(X, Y)] if batch_size is None else zip(
            torch.split(X, batch_size), torch.split(Y, batch_size), strict=True)
        for xb, yb in batches:
            optimizer.zero_grad()
            loss = 0.5 * ((net(xb) - yb) ** 2).mean()
            loss.backward()
            optimizer.step()
    return net


def sklearn_lab(epochs, seed=0):
    """Return the issue's MLPClassifier: its own SGD (momentum, shuffling) for exactly epochs.

    batch_size is left at 'auto', min(200, n): full batch on linear(100) and XOR.
    """
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(4, 4), activation="logistic", solver="sgd",
                         max_iter=epochs, tol=0, n_iter_no_change=10**9, random_state=seed)


def sklearn_plain(epochs, learning_rate, n, seed=0):
    """Return MLPClassifier reduced to nnserve's work: plain full-batch SGD, no shuffling."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(4, 4), activation="logistic", solver="sgd",
                         max_iter=epochs, tol=0, n_iter_no_change=10**9, batch_size=n,
                         learning_rate_init=learning_rate, momentum=0.0, alpha=0.0,
                         shuffle=False, random_state=seed)


def sklearn_fit(model, x, y):
    """Fit model, quiet about the convergence warning that max_iter runs always raise."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)
