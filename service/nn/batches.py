"""The training set in batches, and one pass over a batch, block by block.

A batch is a pair ``(rows, blocks)``: its number of rows and its blocks, each
a Workspace of at most block_rows rows and their labels, made once per length
and reused. Working block by block keeps a layer's arrays in the CPU cache,
where those of a million-row batch would stream from memory at every layer, and
keeps the buffers small. The loss is a mean over the batch, so each block's
gradient is its rows' sum divided by the batch's rows: the blocks' gradients add up
to the batch's, and the optimizer steps once per batch as if it were one block.

Full-batch training on a set of at most block_rows rows loads it once and reuses
it every epoch; larger sets and mini-batches (seeded shuffles) are copied into
their workspaces block by block as the pass reaches them.
"""

import numpy as np

from .network import Workspace, forward, gradient, loss_value

BLOCK_ROWS = 16384  # rows per block: a 2-4-4-1 block (3.5 MB) stays in the L3 cache


class Batches:
    """The rows x (n, d_0) and labels y (n, 1) of a set (None to only predict), in batches."""

    def __init__(self, arch, x, y, batch_size=None, block_rows=None):
        self.arch, self.x, self.y, self.n = arch, x, y, len(x)
        self.size = self.n if batch_size is None else min(batch_size, self.n)
        self.block_rows = block_rows = block_rows or BLOCK_ROWS
        self.last = -(-self.n // self.size) - 1  # the index of an epoch's last batch
        self.works = {}
        if self.size == self.n <= block_rows:  # one batch of one block: loaded once
            self.loaded = [(self.n, [self.workspace(self.n).load(x, y)])]
        else:
            self.loaded = None

    def workspace(self, n):
        """Return the workspace of blocks of n rows."""
        if n not in self.works:
            self.works[n] = Workspace(self.arch, n, self.x.dtype)
        return self.works[n]

    def epoch(self, rng):
        """Return the batches of an epoch: the whole set, or shuffled mini-batches with rng."""
        if self.size == self.n:
            return self.loaded or [self.whole()]
        return self._shuffled(rng.permutation(self.n))

    def whole(self):
        """Return the whole set, in order, as one batch."""
        return self.loaded[0] if self.loaded else (self.n, self.blocks(self.x, self.y))

    def _shuffled(self, perm):
        x, y, size = self.x[perm], self.y[perm], self.size
        for i in range(0, self.n, size):
            yield min(size, self.n - i), self.blocks(x[i : i + size], y[i : i + size])

    def blocks(self, x, y):
        """Return the workspace of each block of the rows x, loaded when the pass reaches it."""
        if len(x) <= self.block_rows:  # a mini-batch's one block: no generator to run
            return [self.workspace(len(x)).load(x, y)]
        return self._blocks(x, y)

    def _blocks(self, x, y):
        for i in range(0, len(x), self.block_rows):
            rows = slice(i, i + self.block_rows)
            xb = x[rows]
            yield self.workspace(len(xb)).load(xb, None if y is None else y[rows])


def labelled_right(y_hat, y, threshold=0.5):
    """Return how many rows have (y_hat >= threshold) equal to the label y."""
    return len(y) - np.count_nonzero((y_hat >= threshold) != (y > 0.5))


def evaluate(params, batch, loss, grads=None, measure=False, count_right=False):
    """Return (loss summed over rows, rows labelled right) of a batch, 0 for what is not asked.

    With grads, also fill grads with the gradient of the batch's mean loss.
    """
    rows, blocks = batch
    loss_sum = right = 0
    for k, work in enumerate(blocks):
        y_hat = forward(params, work)
        if measure:  # before back-propagation overwrites z
            loss_sum += loss_value(work, loss) * len(y_hat)
        if count_right:
            right += labelled_right(y_hat, work.y)
        if grads is not None:
            gradient(params, work, loss, work.grads if k else grads, rows)
            if k:
                grads["theta"] += work.grads["theta"]
    return loss_sum, right


def predict(params, data):
    """Return the output (n, 1) for every row of data, in order, block by block."""
    y_hat, start = np.empty((data.n, 1), data.x.dtype), 0
    for work in data.whole()[1]:
        end = start + len(work.a[0])
        y_hat[start:end] = forward(params, work)
        start = end
    return y_hat
