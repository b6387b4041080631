"""The training set in batches, each loaded into a Workspace that is made once per length.

Full-batch training loads the set once and reuses it every epoch; mini-batches
are seeded shuffles of the set, copied into their workspace batch by batch.
"""

from .network import Workspace


class Batches:
    """The rows x (n, d_0) and labels y (n, 1) of a training set, cut into batches."""

    def __init__(self, arch, x, y, batch_size=None):
        self.arch, self.x, self.y, self.n = arch, x, y, len(x)
        self.size = self.n if batch_size is None else min(batch_size, self.n)
        self.last = -(-self.n // self.size) - 1  # the index of an epoch's last batch
        self.works = {}
        self.whole = [(self.workspace(self.n).load(x), y)] if self.size == self.n else None

    def workspace(self, n):
        """Return the workspace of batches of n rows."""
        if n not in self.works:
            self.works[n] = Workspace(self.arch, n, self.x.dtype)
        return self.works[n]

    def epoch(self, rng):
        """Return the (work, yb) of an epoch: the whole set, or shuffled mini-batches with rng."""
        return self.whole or self._shuffled(rng.permutation(self.n))

    def _shuffled(self, perm):
        x, y, size = self.x[perm], self.y[perm], self.size
        for i in range(0, self.n, size):
            xb = x[i : i + size]
            yield self.workspace(len(xb)).load(xb), y[i : i + size]

    def loaded(self):
        """Return a workspace holding the whole set, in order."""
        return self.whole[0][0] if self.whole else self.workspace(self.n).load(self.x)
