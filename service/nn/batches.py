"""The training set in batches for a stack of networks, and one pass over a batch, block by block.

A batch is a pair ``(rows, blocks)``: its number of rows and its blocks, each a Workspace
of at most block_rows rows and their labels, made once per length and reused. Working
block by block keeps a layer's arrays in the CPU cache, where those of a million-row batch
would stream from memory at every layer, and keeps the buffers small. Each network's loss
is a mean over the batch, so each block's gradient is its rows' sum divided by the batch's
rows: the blocks' gradients add up to the batch's, and the optimizer steps once per batch
as if it were one block.

Full batches are the same rows for every network: a set of at most block_rows rows is
loaded once and reused every epoch; larger sets are copied into their workspace block by
block as the pass reaches them. Mini-batches give each network its own seeded shuffle,
drawn from that network's generator, so a network trained beside others sees the batches
it would see alone.
"""

import numpy as np

from .passes import Workspace, forward, gradient, loss_sums, right_counts

BLOCK_ROWS = 16384  # rows x networks per block: a 2-4-4-1 block (3.5 MB) stays in the L3 cache


class Batches:
    """The rows x (n, d_0) and labels y (n,) of a set (None to only predict), in batches for
    a stack of m networks."""

    def __init__(self, arch, x, y, m=1, batch_size=None, block_rows=None):
        self.arch, self.x, self.y, self.n, self.m = arch, x, y, len(x), m
        self.size = self.n if batch_size is None else min(batch_size, self.n)
        self.block_rows = block_rows = block_rows or max(1, BLOCK_ROWS // m)
        self.last = -(-self.n // self.size) - 1  # the index of an epoch's last batch
        self.works = {}
        if self.size == self.n <= block_rows:  # one batch of one block: loaded once
            self.loaded = [(self.n, [self.workspace(self.n, True).load(x, y)])]
        else:
            self.loaded = None

    def workspace(self, n, shared):
        """Return the workspace of blocks of n rows, shared by the networks or one set each."""
        if (n, shared) not in self.works:
            self.works[n, shared] = Workspace(self.arch, self.m, n, self.x.dtype, shared)
        return self.works[n, shared]

    def epoch(self, rngs):
        """Return the batches of an epoch: the whole set, or mini-batches shuffled by each
        network's generator in rngs."""
        if self.size == self.n:
            return self.loaded or [self.whole()]
        return self._shuffled(np.stack([rng.permutation(self.n) for rng in rngs]))

    def whole(self):
        """Return the whole set, in order, as one batch."""
        return self.loaded[0] if self.loaded else (self.n, self.blocks(self.x, self.y, True))

    def _shuffled(self, perms):
        x, y, size = self.x[perms], self.y[perms], self.size
        for i in range(0, self.n, size):
            rows = slice(i, i + size)
            yield min(size, self.n - i), self.blocks(x[:, rows], y[:, rows], False)

    def blocks(self, x, y, shared):
        """Return the workspace of each block of the rows x, loaded when the pass reaches it."""
        n = x.shape[-2]
        if n <= self.block_rows:  # a mini-batch's one block: no generator to run
            return [self.workspace(n, shared).load(x, y)]
        return self._blocks(x, y, shared)

    def _blocks(self, x, y, shared):
        for i in range(0, x.shape[-2], self.block_rows):
            rows = slice(i, i + self.block_rows)
            xb = x[..., rows, :]
            yb = None if y is None else y[..., rows]
            yield self.workspace(xb.shape[-2], shared).load(xb, yb)


def evaluate(params, batch, loss, grads=None, measure=False, count_right=False):
    """Return each network's (loss summed over rows, rows labelled right) on a batch, as (m,)
    arrays, or 0 for what is not asked.

    With grads, also fill grads with the gradient of each network's mean loss on the batch.
    """
    rows, blocks = batch
    loss_sum = right = 0
    for k, work in enumerate(blocks):
        forward(params, work)
        if measure:  # before back-propagation overwrites z
            loss_sum = loss_sum + loss_sums(work, loss) if k else loss_sums(work, loss)
        if count_right:
            right = right + right_counts(work) if k else right_counts(work)
        if grads is not None:
            gradient(params, work, loss, work.grads if k else grads, rows)
            if k:
                grads["theta"] += work.grads["theta"]
    return loss_sum, right


def predict(params, data):
    """Return each network's output for every row of data, in order: (m, n), block by block."""
    y_hat, start = np.empty((params["m"], data.n), data.x.dtype), 0
    for work in data.whole()[1]:
        end = start + work.n
        y_hat[:, start:end] = forward(params, work)[0]
        start = end
    return y_hat
