"""PgMemory: what one process remembers of the models in PostgreSQL, and the rule that says
when it still holds.

The freshness rule: every save, delete or alias change moves the database's generation
(store_generation) and NOTIFYs CHANNEL with "name generation", both in its own
transaction. Each process listens (service/pg/listener.py) and keeps, per model name, the
generation of its last change, and a counter for everything (Freshness); a load answers
from memory only while the listener listens and neither moved since that memory was
taken, so a warm load makes no network call. Notifications sent while the listener's
connection was down are lost, so everything is rechecked when listening restarts, and a
backstop on the listener's connection reads the database's generation every tick (at most
once a second): one that moved past the last notification seen means some were missed.
While the listener does not listen, every load asks the database.
"""

import threading
import weakref

from ..lru import Lru
from .cache import ModelCache

CHANNEL = "nnserve_models"
GENERATION = "SELECT value FROM store_generation"
MAX_NAMES = 100_000  # names with a counter; beyond, every counter starts again


class Freshness:
    """The counters of one process for the database of a listener, shared by its stores."""

    def __init__(self, listener):
        self.listener = listener  # _names: name -> the generation of its last change
        self._everything, self._names, self._seen = 0, {}, None
        self._lock = threading.Lock()
        listener.subscribe(CHANNEL, self._notified, poll=self._backstop)

    def state(self, name):
        """Return what memory about name is valid under, or None when none is (not listening)."""
        if not self.listener.is_listening(CHANNEL):
            return None
        return self._everything, self._names.get(name, 0)

    def changed(self, name, generation=None):
        """Note a change to name (made here, or notified) at generation; without one, when it
        is unknown, everything is rechecked. A generation already noted changes nothing, so
        the notification of this process's own change does not make it load again."""
        if generation is None:
            self.recheck()
            return
        with self._lock:
            if len(self._names) >= MAX_NAMES:
                self._names.clear()
                self._everything += 1
            if generation > self._names.get(name, 0):
                self._names[name] = generation
            if self._seen is None or generation > self._seen:
                self._seen = generation

    def recheck(self):
        """Invalidate every memory (notifications may have been missed)."""
        with self._lock:
            self._everything += 1

    def _notified(self, payload):
        if payload is None:  # listening (again): what was sent before is unknown
            self.recheck()
            return
        name, _, generation = payload.rpartition(" ")
        self.changed(name, int(generation) if generation.isdigit() else None)

    def _backstop(self, conn):
        value = conn.execute(GENERATION).fetchone()[0]
        with self._lock:
            missed = self._seen is not None and value != self._seen
            self._seen = value
        if missed:
            self.recheck()


_FRESHNESS = weakref.WeakKeyDictionary()  # listener -> its Freshness
_LOCK = threading.Lock()


def freshness_of(listener):
    """Return the Freshness fed by listener (one per listener: the stores of a process on
    one database see each other's changes at once)."""
    with _LOCK:
        found = _FRESHNESS.get(listener)
        if found is None:
            found = _FRESHNESS[listener] = Freshness(listener)
        return found


class PgMemory:
    """The loaded models and aliases of one process, for one PgStore."""

    def __init__(self, listener, size):
        self.cache = ModelCache(size)
        self.freshness = freshness_of(listener)
        self._aliases = Lru(4 * size)  # name -> (state, {alias: version})

    def state(self, name):
        """Return the state memory about name is kept under now, or None (keep nothing)."""
        return self.freshness.state(name)

    def changed(self, name, generation=None):
        """Forget what this process knows of name: it was changed here."""
        self.freshness.changed(name, generation)

    def aliases(self, name, state):
        """Return the aliases of name remembered under state, or None."""
        kept = self._aliases.get(name) if state is not None else None
        return dict(kept[1]) if kept and kept[0] == state else None

    def last_aliases(self, name):
        """Return the aliases of name last remembered, whatever state they were read under,
        or None: what a process serves while the database cannot be asked."""
        kept = self._aliases.get(name)
        return dict(kept[1]) if kept else None

    def keep_aliases(self, name, state, aliases):
        """Remember the aliases of name, read under state."""
        if state is not None:
            self._aliases.put(name, (state, dict(aliases)))
