"""StoreMemory: what one process remembers of a file store, and the rule that says when it
still holds.

The freshness rule: a load answers from memory only while the model's folder is as it was
(its inode and mtime), and a save or delete made anywhere shows in the next load:
- every save and delete changes the folder's mtime, then bumps the store's generation
  counter (generation.py), which every process maps into memory;
- a folder's stat is remembered while the counter stands still, for at most RECHECK_S,
  so a change made by hand (not through a store) is seen within it;
- a folder changed in the last SETTLED_NS may change again within one tick of the file
  system's clock without its mtime moving, so it is not remembered (git's "racy" entries).
See docs/ARCHITECTURE.md for the whole path of a load.
"""

import time

from ..lru import Lru
from .cache import ModelCache
from .generation import Generation

SETTLED_NS = 50_000_000
# The listed metrics kept grow to the models a listing finds, up to this many: a listing
# larger than the LRU would drop, in name order, each entry it needs next. A trained
# model's metrics are under 1 KB; an upload's may hold 16 KB (uploads need the token).
MAX_LISTED = 65_536
RECHECK_S = 1.0


class StoreMemory:
    """The loaded models, listed metrics and folder stats of one process, for the store at root."""

    def __init__(self, root, size):
        self.cache = ModelCache(size)
        self.listed = Lru(64 * size)  # (name, version, file identity) -> its metrics
        self.generation = Generation(root)
        self._stats, self._max_stats = {}, 64 * size  # name -> (generation, until, state)

    def folder_state(self, name, version, stat):
        """Return (state, settled): the folder's (inode, mtime) as remembered, or as
        stat(name, version) returns it now, and whether it was settled when taken.

        The counter is mapped at the second load of a name (a process that loads a model
        once maps nothing)."""
        seen, now = self._stats.get(name), time.monotonic()
        generation = self.generation.read() if seen else self.generation.peek()
        # Fast path (benchmarks/RESULTS.md, "a cached model checked without a system call"):
        # a memory read of the counter instead of a stat per request.
        if seen and generation is not None and seen[0] == generation and now < seen[1]:
            return seen[2], True
        taken = time.time_ns()
        state = stat(name, version)
        if self.generation.drop_if_replaced():  # a counter file replaced by hand: trust no
            generation = None  # value read from the old one
        settled = taken - state[1] > SETTLED_NS
        if settled:
            if len(self._stats) >= self._max_stats:  # names asked for, bounded
                self._stats.clear()
            self._stats[name] = (generation, now + RECHECK_S, state)
        return state, settled

    def changed(self, name):
        """Tell every process that name's folder changed: this one forgets its stat (even if
        the counter cannot be bumped), the others see the counter move."""
        self._stats.pop(name, None)
        self.generation.bump()
