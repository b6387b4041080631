"""ModelCache: the loaded models of one process, and what it knows of their files."""

import threading
from collections import OrderedDict

from ..lru import put_bounded


class ModelCache:
    """Three LRU maps behind one lock, shared by the threads of a process.

    models: (name, version) -> (file identity, model, meta), at most size entries;
    resolved: (name, version asked, None for latest) -> (folder state, version found), so
    that a repeated load needs no listing, at most 2 x size; verified: (name, version) ->
    identity of a file validated in full, 64 x size (tiny). One lock, not one per map: a
    hit is on every prediction's path (benchmarks/RESULTS.md, "cache hit ... time").
    """

    def __init__(self, size):
        self.size = size
        self._lock = threading.Lock()
        self._models, self._resolved, self._verified = OrderedDict(), OrderedDict(), OrderedDict()

    def hit(self, name, version, state):
        """Return (model, meta) when the folder, still in state, resolved version to a model
        kept here; else None."""
        with self._lock:
            seen = self._resolved.get((name, version))
            hit = seen and seen[0] == state and self._models.get((name, seen[1]))
            if not hit:
                return None
            self._models.move_to_end((name, seen[1]))
            return hit[1], hit[2]

    def last(self, name, version):
        """Return the (model, meta) version last resolved to, whatever state it was in, or
        None: what a process still serves while its store cannot be asked."""
        with self._lock:
            seen = self._resolved.get((name, version))
            hit = seen and self._models.get((name, seen[1]))
            return (hit[1], hit[2]) if hit else None

    def identity(self, name, version):
        """Return the identity of the model kept for what version (None: latest) of name last
        resolved to, or None."""
        with self._lock:
            seen = self._resolved.get((name, version))
            kept = self._models.get((name, seen[1] if seen else version))
            return kept[0] if kept else None

    def resolve(self, name, version, state, found):
        """Remember that the folder in state resolved version (None: latest) to found."""
        with self._lock:
            put_bounded(self._resolved, (name, version), (state, found), 2 * self.size)

    def model(self, name, version, identity):
        """Return the (model, meta) kept for the file with identity, or None."""
        with self._lock:
            hit = self._models.get((name, version))
            if hit is None or hit[0] != identity:
                return None
            self._models.move_to_end((name, version))
            return hit[1], hit[2]

    def keep(self, name, version, identity, model, meta):
        """Keep a loaded model, dropping the least recently used beyond size."""
        with self._lock:
            put_bounded(self._models, (name, version), (identity, model, meta), self.size)

    def is_verified(self, name, version, identity):
        """Return whether the file with identity was validated in full."""
        with self._lock:
            return self._verified.get((name, version)) == identity

    def mark_verified(self, name, version, identity):
        """Remember that the file with identity was validated in full."""
        with self._lock:
            put_bounded(self._verified, (name, version), identity, 64 * self.size)

    def forget(self, name, version=None):
        """Drop the models kept for one version of name (None: every version)."""
        with self._lock:
            for key in [k for k in self._models if k[0] == name and version in (None, k[1])]:
                del self._models[key]
