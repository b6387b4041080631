"""Lru: a bounded map that drops the least recently used entry, shared by a process's threads."""

import threading
from collections import OrderedDict


class Lru:
    """A map that keeps at most size entries, dropping the least recently used; thread-safe."""

    def __init__(self, size):
        self.size, self._lock, self._entries = size, threading.Lock(), OrderedDict()

    def get(self, key):
        """Return the value kept under key (now the most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value):
        """Keep value under key, dropping the least recently used entries beyond size."""
        with self._lock:
            put_bounded(self._entries, key, value, self.size)

    def hold(self, count):
        """Keep at least count entries from now on (the size never shrinks)."""
        with self._lock:
            self.size = max(self.size, count)

    def drop(self, matches):
        """Remove the entries whose key matches (a predicate on the key)."""
        with self._lock:
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]

    def clear(self):
        """Remove every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self):
        return len(self._entries)


def put_bounded(entries, key, value, limit):
    """Keep value under key in the OrderedDict entries, dropping the oldest beyond limit."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)
