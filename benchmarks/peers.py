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
    ones columns kept in preallocated buffers, each layer is one matmul forward and one
    back, and the update is two calls on the flat vectors: 32 NumPy calls an epoch.
    """
    n = len(x)
    theta, grad = theta.copy(), np.empty_like(theta)
    W, G = _blocks(theta), _blocks(grad)
    V1, V2 = W[1][:-1].T, W[2][:-1].T  # the weights without their bias rows, transposed
    a0, a1, a2 = np.ones((n, 3)), np.ones((n, 5)), np.ones((n, 5))
    a0[:, :2] = x
    h1, h2, a3 = a1[:, :4], a2[:, :4], np.empty((n, 1))
    t1, t2, g, d1, d2 = (np.empty((n, 4)) for _ in range(5))
    y, e, d3 = y.reshape(-1, 1), np.empty((n, 1)), np.empty((n, 1))
    a0T, a1T, a2T = a0.T, a1.T, a2.T
    step = learning_rate / n
    for _ in range(epochs):
        # sigmoid(z) = 0.5 + t with t = 0.5 tanh(z / 2), and sigmoid'(z) = 0.25 - t^2
        np.matmul(a0, W[0], out=t1)
        t1 *= 0.5
        np.tanh(t1, out=t1)
        t1 *= 0.5
        np.add(t1, 0.5, out=h1)
        np.matmul(a1, W[1], out=t2)
        t2 *= 0.5
        np.tanh(t2, out=t2)
        t2 *= 0.5
        np.add(t2, 0.5, out=h2)
        np.matmul(a2, W[2], out=a3)
        a3 *= 0.5
        np.tanh(a3, out=a3)
        a3 *= 0.5
        a3 += 0.5
        # back: dL/dz3 = (a3 - y) a3 (1 - a3), the 1/n folded into the step
        np.multiply(a3, a3, out=e)
        np.subtract(a3, e, out=e)
        np.subtract(a3, y, out=d3)
        d3 *= e
        np.matmul(a2T, d3, out=G[2])
        np.matmul(d3, V2, out=d2)
        np.multiply(t2, t2, out=g)
        np.subtract(0.25, g, out=g)
        d2 *= g
        np.matmul(a1T, d2, out=G[1])
        np.matmul(d2, V1, out=d1)
        np.multiply(t1, t1, out=g)
        np.subtract(0.25, g, out=g)
        d1 *= g
        np.matmul(a0T, d1, out=G[0])
        grad *= step
        theta -= grad
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


def sklearn_lab(epochs, learning_rate, n, seed=0):
    """Return the issue's MLPClassifier for the lab: full batch, plain SGD, exactly epochs."""
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
