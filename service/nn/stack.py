"""The networks of a batched fit still training: weights, optimizer state, data and rules.

A Stack holds m networks in network.py's layout, each numbered by its id among all the
networks of the fit. keep() leaves out the networks that stopped: every array that belongs
to the networks (theta, the optimizer's state, learning rates, weight decay, best weights)
keeps their rows, and the batches are made anew for the smaller stack.
"""

import numpy as np

from .batches import Batches, evaluate
from .config import DTYPES
from .network import init_params, join, params_from_theta, spread, take
from .optimizers import OPTIMIZERS, add_weight_decay
from .watch import Rules


class Stack:
    """m networks trained together: ids (m,), their trials' generators and configs."""

    def __init__(self, arch, sets, ids, rngs, configs, theta, state, best):
        self.arch, self.sets, self.ids, self.rngs, self.configs = arch, sets, ids, rngs, configs
        shape = configs[0]
        self.params = params_from_theta(arch, theta)
        self.grads = params_from_theta(arch, np.zeros_like(theta))
        self.m = m = self.params["m"]
        self.state = state or OPTIMIZERS[shape.optimizer][0](
            theta, spread(arch, np.array([c.learning_rate for c in configs], theta.dtype)), shape)
        l2 = np.array([c.l2 for c in configs], theta.dtype)
        self.decay = spread(arch, l2, biases=False) if l2.any() else None
        self.buf = np.empty_like(theta)
        self._step = OPTIMIZERS[shape.optimizer][1]
        self.rules = Rules(configs)
        self.best = best
        self.owner = spread(arch, np.arange(m)) if best is not None else None
        self.data = Batches(arch, *sets[0], m, shape.batch_size)
        self.val = Batches(arch, *sets[1], m) if sets[1] is not None else None

    @classmethod
    def start(cls, arch, sets, trials):
        """Return the stack of every trial's starts, each drawn from its trial's generator."""
        dtype = DTYPES[trials[0].config.dtype]
        thetas = [init_params(arch, t.rng, dtype, t.config.starts)["theta"] for t in trials]
        theta = join(arch, thetas)
        networks = [(t, k) for t in trials for k in range(t.config.starts)]
        configs = [t.config for t, _ in networks]
        best = theta.copy() if any(c.restores() for c in configs) else None
        return cls(arch, sets, np.arange(len(networks)), [t.rng for t, _ in networks],
                   configs, theta, None, best)

    def step(self):
        """Take one optimizer step of every network along the gradient of the last batch."""
        theta, g = self.params["theta"], self.grads["theta"]
        if self.decay is not None:
            add_weight_decay(theta, g, self.decay, self.buf)
        self._step(theta, g, self.state)

    def measure(self, loss, wants_accuracy, with_validation):
        """Return the validation (loss, accuracy) of every network, (None, None) without."""
        if self.val is None or not with_validation:
            return None, None
        loss_sum, right = evaluate(self.params, self.val.whole(), loss, measure=True,
                                   count_right=wants_accuracy)
        return loss_sum / self.val.n, (right / self.val.n if wants_accuracy else None)

    def keep_best(self, improved):
        """Copy the weights of the networks whose monitored loss improved."""
        if self.best is not None and improved.any():
            np.copyto(self.best, self.params["theta"], where=improved[self.owner])

    def weights(self, row, best=False):
        """Return the flat weights of one network (its best epoch's when best)."""
        return take(self.arch, self.best if best else self.params["theta"], [row])

    def keep(self, rows):
        """Return the stack of the networks numbered rows, with their state; None if empty."""
        if not len(rows):
            return None
        theta = self.params["theta"]
        state = {key: take(self.arch, value, rows)
                 if isinstance(value, np.ndarray) and value.shape == theta.shape else value
                 for key, value in self.state.items()}
        best = None if self.best is None else take(self.arch, self.best, rows)
        kept = Stack(self.arch, self.sets, self.ids[rows], [self.rngs[r] for r in rows],
                     [self.configs[r] for r in rows], take(self.arch, theta, rows), state, best)
        self.rules.keep(rows)
        kept.rules = self.rules
        return kept
