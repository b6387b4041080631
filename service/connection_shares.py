"""How many connections each gunicorn worker holds, in memory the master's forks share.

A kept-alive connection stays with the worker that accepted it, and which worker that is
the kernel leaves to chance: 16 clients on 4 workers were seen held as 7, 4, 4 and 1, the
7 sharing one process's CPU while another idled (benchmarks/RESULTS.md, "Connections
spread over the workers"). A worker holding more than its even share (rounded up) answers
"Connection: close", and only a worker holding the fewest or less than its share accepts:
the client reconnects to one of those; once all are within their share, nothing is
closed. Only slots written within FRESH_S count: a worker that stopped turning its loop
(hung, or killed before the master cleared its slot) does not count towards the share.
The master gives each worker it forks a slot no live worker holds (free), and clears it
when the worker exits.
"""

import mmap
import time

FRESH_S = 2.0  # a worker's loop turns at least once a second


class ConnectionShares:
    """One slot a worker: its connections + 1 (0: empty) and when written."""

    def __init__(self, slots=64, clock=time.monotonic):
        self.slots, self.clock = slots, clock
        self.cells = memoryview(mmap.mmap(-1, 16 * slots)).cast("d")  # shared with forks

    def free(self, taken):
        """Return a slot not in taken (the live workers'), or None when every one is."""
        return next((slot for slot in range(self.slots) if slot not in taken), None)

    def record(self, slot, connections):
        """Store a worker's count of open connections, now."""
        self.cells[2 * slot], self.cells[2 * slot + 1] = connections + 1, self.clock()

    def clear(self, slot):
        """Empty a worker's slot (it has exited, or is stopping)."""
        self.cells[2 * slot] = 0

    def crowded(self, slot, connections):
        """Record connections and return whether they are more than the worker's even share
        of all the live workers' connections (rounded up): then it closes what it can."""
        live = self._live(slot, connections)
        return connections > _share(live)

    def accepts(self, slot, connections):
        """Record connections and return whether the worker should accept more: while no
        live worker holds fewer, or while it holds less than its share (so that in a burst
        of connections it need not wait for the others to catch up one by one)."""
        live = self._live(slot, connections)
        return connections <= min(live) or connections < _share(live)

    def _live(self, slot, connections):
        self.record(slot, connections)
        since, cells = self.clock() - FRESH_S, self.cells
        return [cells[i] - 1 for i in range(0, len(cells), 2) if cells[i] and cells[i + 1] > since]


def _share(live):
    """Return the even share of the live counts, rounded up."""
    return -(-sum(live) // len(live))
