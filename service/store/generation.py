"""The store's generation: a counter in a file that every process maps into memory, moved
on by every save and delete, so that a load can tell nothing changed without a system call
(the freshness rule is in memory.py; why a system call matters, in docs/ARCHITECTURE.md).

A writer bumps the counter after its change is in place, holding an exclusive lock on the
file (flock), so no bump is lost to another. A process trusts the counter only if it can
bump it too (it opens the file for writing before mapping it); where it cannot, read()
returns None, every load stats, and readiness reports the store. A counter file removed or
replaced by hand is mapped again within RETRY_S. The file must never shrink: reading a
mapping past its end is a SIGBUS.
"""

import fcntl
import logging
import mmap
import os
import time

FILE = ".generation"  # hidden: not a model name
SIZE = 8  # one little-endian unsigned 64-bit counter
RETRY_S = 1.0  # how often a process without the mapping tries to make it again

log = logging.getLogger("nnserve.store")


class Generation:
    """The counter of the store at root, shared by every process that maps it."""

    def __init__(self, root):
        self.path = os.path.join(root, FILE)
        self._view, self._inode, self._retry_at, self._checked_at = None, None, 0.0, 0.0
        self._warned = False

    def read(self):
        """Return the counter, or None when it is not shared (then trust no earlier stat).

        The first read maps the file, which a process loading one model once (the CLI, a
        cold load) need not pay for: see peek."""
        if self._view is None:
            self._map()
        return self.peek()

    def peek(self):
        """Return the counter if it is mapped already, else None (without mapping it)."""
        view = self._view
        return None if view is None else int.from_bytes(view[:SIZE], "little")

    def make(self):
        """Create the counter's file if it is missing; raise OSError if this process could
        not bump it (a counter others watch but this process cannot move is a stale one)."""
        _make(self.path)

    def drop_if_replaced(self):
        """Drop the mapping, to be made again, if the file at path is no longer the one
        mapped (removed or replaced by hand: a restore, a tidy-up); return True if it was
        dropped. Looks at most every RETRY_S."""
        now = time.monotonic()
        if self._view is None or now < self._checked_at:
            return False
        self._checked_at = now + RETRY_S
        try:
            same = os.stat(self.path).st_ino == self._inode
        except OSError:
            same = False
        if not same:
            self._view, self._retry_at = None, 0.0
        return not same

    def bump(self):
        """Move the counter on, once a change to the store is in place. Never raises: the
        change is made, and a missed bump only delays its sight by other processes' warm
        caches, until their next stat of the folder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # its own open file: excludes threads too
                value = int.from_bytes(os.pread(fd, SIZE, 0).ljust(SIZE, b"\0"), "little")
                os.pwrite(fd, ((value + 1) % 2**64).to_bytes(SIZE, "little"), 0)
            finally:
                os.close(fd)  # releases the lock
        except OSError as exc:
            log.warning("store generation not bumped (%s): other processes may serve the "
                        "version they knew for up to a second", exc)

    def _map(self):
        """Map the counter if its file can be made, at most every RETRY_S (the store's
        folder is not created here); warn once when it cannot."""
        now = time.monotonic()
        if now < self._retry_at:
            return
        self._retry_at = now + RETRY_S
        try:
            _make(self.path)  # only a process that can bump the counter may trust it
            self._view, self._inode = _map_read_only(self.path)
            self._checked_at = now + RETRY_S
        except (OSError, ValueError) as exc:
            if not self._warned and not isinstance(exc, FileNotFoundError):  # no store yet
                self._warned = True
                log.warning("store generation unavailable (%s): loads stat the model's "
                            "folder every time", exc)


def _map_read_only(path):
    """Return (a read-only shared mapping of the counter at path, the file's inode).

    Read-only, from a read-only descriptor: bumps (pwrite) show in it at once, and it never
    holds the file open for writing (the mapping keeps its own copy of the descriptor),
    which would forbid remounting the file system read-only."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there does not block
    try:
        return mmap.mmap(fd, SIZE, access=mmap.ACCESS_READ), os.fstat(fd).st_ino
    finally:
        os.close(fd)


def _make(path):
    """Create the counter's file at path (a zero), or extend it to SIZE bytes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
    try:
        if os.fstat(fd).st_size < SIZE:
            os.ftruncate(fd, SIZE)  # two processes doing this at once both write zeros
    finally:
        os.close(fd)
