"""ModelCache: the loaded models of one process, and what it knows of their files."""

from ..lru import Lru


class ModelCache:
    """Three LRU maps, shared by the threads of a process.

    models: (name, version) -> (file identity, model, meta), at most size entries;
    resolved: (name, version asked, None for latest) -> (folder state, version found), so
    that a repeated load needs no listing, at most 2 x size; verified: (name, version) ->
    identity of a file validated in full, 64 x size (tiny).
    """

    def __init__(self, size):
        self.size = size
        self._models, self._resolved, self._verified = Lru(size), Lru(2 * size), Lru(64 * size)

    def hit(self, name, version, state):
        """Return (model, meta) when the folder, still in state, resolved version to a model
        kept here; else None."""
        seen = self._resolved.get((name, version))
        hit = seen and seen[0] == state and self._models.get((name, seen[1]))
        return (hit[1], hit[2]) if hit else None

    def resolve(self, name, version, state, found):
        """Remember that the folder in state resolved version (None: latest) to found."""
        self._resolved.put((name, version), (state, found))

    def model(self, name, version, identity):
        """Return the (model, meta) kept for the file with identity, or None."""
        hit = self._models.get((name, version))
        return None if hit is None or hit[0] != identity else (hit[1], hit[2])

    def keep(self, name, version, identity, model, meta):
        """Keep a loaded model, dropping the least recently used beyond size."""
        self._models.put((name, version), (identity, model, meta))

    def is_verified(self, name, version, identity):
        """Return whether the file with identity was validated in full."""
        return self._verified.get((name, version)) == identity

    def mark_verified(self, name, version, identity):
        """Remember that the file with identity was validated in full."""
        self._verified.put((name, version), identity)

    def forget(self, name, version=None):
        """Drop the models kept for one version of name (None: every version)."""
        self._models.drop(lambda key: key[0] == name and version in (None, key[1]))
