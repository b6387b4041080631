"""Listener: the one LISTEN connection of a process, shared by every subscriber (the model
store's freshness, the job runners' wake-ups).

A daemon thread holds a connection of its own (never the pool's), LISTENs on each
subscribed channel and calls the channel's callbacks with each notification's payload.
Notifications sent while that connection is down are lost, so after every (re)connection
each callback is called once with None, meaning "recheck: you may have missed some". The
thread reconnects by itself, backing off from RETRY_MIN_S to RETRY_MAX_S. Every tick_s it
runs the subscribers' polls on its connection: their backstop against a lost notification,
and a proof that the connection still answers. Callbacks and polls run on the listener's
thread: they must be quick (bump a counter, set an event).
"""

import logging
import os
import re
import threading
import time

import psycopg
from psycopg import sql

log = logging.getLogger("nnserve.db")
TICK_S = 1.0  # polls run at most this often: the backstop's period
RETRY_MIN_S, RETRY_MAX_S = 0.05, 1.0
WAIT_S = 0.25  # how soon the thread sees a new channel or a stop
APPLICATION_NAME = "nnserve-listener"  # pg_stat_activity shows "nnserve-listener PID"
CHANNEL_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)
CONNECT_OPTIONS = {  # a dead peer (a partition, a host down) is noticed in seconds
    "autocommit": True, "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
    "keepalives_interval": 2, "keepalives_count": 2, "tcp_user_timeout": 5000,
    "client_encoding": "UTF8",  # payloads are str on a SQL_ASCII database too
}


class Listener:
    """The notifications of the database at url, for the subscribers of one process."""

    def __init__(self, url, *, tick_s=TICK_S):
        self.url, self.tick_s = url, tick_s
        self._subscribers = {}  # channel -> [(callback, poll)]
        self._listening = frozenset()  # channels LISTENed on the live connection
        self._lock, self._changed = threading.Lock(), threading.Condition()
        self._stopping, self._thread = threading.Event(), None

    def subscribe(self, channel, callback, poll=None):
        """Call callback(payload) for each notification on channel, and callback(None) each
        time listening on it starts or restarts (recheck); poll(conn), when given, runs every
        tick_s on the listening connection. The first subscription starts the thread."""
        if not CHANNEL_RE.fullmatch(channel):
            raise ValueError(f"bad channel name {channel!r}")
        with self._lock:
            self._subscribers.setdefault(channel, []).append((callback, poll))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nnserve-listener",
                                                daemon=True)
                self._thread.start()

    def is_listening(self, channel):
        """Return whether notifications on channel reach the subscribers now."""
        return channel in self._listening

    def wait_listening(self, channel, timeout):
        """Return whether channel is listened on within timeout seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: channel in self._listening, timeout)

    def stop(self, timeout=0.0):
        """Stop the thread, waiting up to timeout seconds (it closes its connection within
        WAIT_S)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self):
        delay, failing = RETRY_MIN_S, False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.url, **CONNECT_OPTIONS,
                                     application_name=f"{APPLICATION_NAME} {os.getpid()}") as conn:
                    if failing:
                        log.warning("listening to the database again")
                    delay, failing = RETRY_MIN_S, False
                    self._serve(conn)
            except psycopg.Error as exc:
                if not failing:
                    log.warning("listening connection lost (%s): reconnecting",
                                " ".join(str(exc).split()) or type(exc).__name__)
                failing = True
            finally:
                self._set_listening(frozenset())
            self._stopping.wait(delay)
            delay = min(2 * delay, RETRY_MAX_S)

    def _serve(self, conn):
        """LISTEN on every channel subscribed, dispatch notifications and run the polls,
        until the connection fails or the listener stops."""
        listening, next_tick = frozenset(), 0.0
        while not self._stopping.is_set():
            with self._lock:
                wanted = frozenset(self._subscribers)
            for channel in wanted - listening:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            if wanted != listening:
                new, listening = wanted - listening, wanted
                self._set_listening(listening)
                for channel in sorted(new):  # from now on nothing is missed: recheck
                    self._dispatch(channel, None)
            if time.monotonic() >= next_tick:
                self._poll(conn)
                next_tick = time.monotonic() + self.tick_s
            wait = min(WAIT_S, max(0.0, next_tick - time.monotonic()))
            for note in conn.notifies(timeout=wait):
                self._dispatch(note.channel, note.payload)

    def _set_listening(self, channels):
        with self._changed:
            self._listening = channels
            self._changed.notify_all()

    def _dispatch(self, channel, payload):
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
        for callback, _ in subscribers:
            try:
                callback(payload)
            except Exception:  # a subscriber's bug must not stop the others' notifications
                log.exception("listener callback on %s failed", channel)

    def _poll(self, conn):
        with self._lock:
            polls = [poll for subs in self._subscribers.values() for _, poll in subs if poll]
        for poll in polls:
            try:
                poll(conn)
            except psycopg.Error:
                raise  # the connection failed: reconnect
            except Exception:
                log.exception("listener poll failed")


_LISTENERS = {}  # (pid, url) -> this process's Listener
_REGISTRY_LOCK = threading.Lock()


def listener_for(url):
    """Return this process's Listener of url (a forked child makes its own: threads do not
    survive a fork)."""
    key = (os.getpid(), url)
    with _REGISTRY_LOCK:
        listener = _LISTENERS.get(key)
        if listener is None:
            listener = _LISTENERS[key] = Listener(url)
        return listener


def stop_listener(url):
    """Stop this process's Listener of url, if it has one (the next listener_for makes a new
    one)."""
    with _REGISTRY_LOCK:
        listener = _LISTENERS.pop((os.getpid(), url), None)
    if listener is not None:
        listener.stop()
