"""Database: one pool of connections to NNSERVE_DATABASE_URL per process, made lazily (a
pool opened in gunicorn's master must not be used by its forked workers), the process's
listening connection (listener.py), and the schema migrated once at start-up under an
advisory lock (several hosts start at once)."""

import logging
import os
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from ..errors import StoreUnavailable
from .listener import listener_for, stop_listener
from .schema import migrate

log = logging.getLogger("nnserve.db")
CONNECT_TIMEOUT_S = 5
# Text is str whatever the database's encoding: psycopg hands out bytes for a SQL_ASCII
# database (initdb's default without a locale) unless the client asks for UTF8.
CONNECT_OPTIONS = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                   "client_encoding": "UTF8"}
# psycopg_pool retries a failed connection with a doubling delay for reconnect_timeout (5
# minutes by default: after a long outage the next try could be minutes away); given up
# this soon, the next request that finds the pool empty tries again at once.
RECONNECT_S = 2.0
# /readyz pings the store and the jobs, each waiting at most this long for a connection, so
# it answers within a readiness probe's timeout (Kubernetes' default: 1 s)
PING_TIMEOUT_S = 0.5
DOWN_FOR_S = 1.0  # after a failure, is_down() says so this long (then one caller tries again)


class Database:
    """The database at url, shared by the job backend and the model store of a process."""

    def __init__(self, url, *, max_size=8):
        self.url, self.max_size = url, max_size
        self._pool, self._pid, self._lock = None, None, threading.Lock()
        self._failed_at = None  # time.monotonic() of the last failure, None once one succeeds

    def migrate(self):
        """Bring the schema to its latest version; raise StoreUnavailable (naming the setting,
        never the password) when the database cannot be reached."""
        with self.connection() as conn:
            migrate(conn)

    def pool(self):
        with self._lock:
            if self._pid != os.getpid():  # a forked child opens a pool of its own
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.max_size, open=False,
                    kwargs=CONNECT_OPTIONS,
                    check=ConnectionPool.check_connection, reconnect_timeout=RECONNECT_S,
                    name="nnserve")
                self._pool.open(wait=False)
                self._pid = os.getpid()
            return self._pool

    @contextmanager
    def connection(self, timeout=CONNECT_TIMEOUT_S):
        """Yield a pooled connection (autocommit; `with conn.transaction()` for more), waiting
        at most timeout s for one; database failures are StoreUnavailable (503)."""
        try:
            with self.pool().connection(timeout=timeout) as conn:
                yield conn
            self._failed_at = None
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.AdminShutdown,
                TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:  # a standby, or read-only set:
            # reads go on, so the database is not marked down
            raise StoreUnavailable("NNSERVE_DATABASE_URL: the database is read-only (a standby,"
                                   " or default_transaction_read_only): nothing can be changed"
                                   " now") from exc
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc):
        """Log the whole reason; return the 503 a client sees, which names neither the
        database's address nor what the server adds to its message (backend PIDs, a query)."""
        self._failed_at = time.monotonic()
        log.error("%s", connect_line(self.url, exc))
        return StoreUnavailable(f"NNSERVE_DATABASE_URL: cannot use the database: "
                                f"{_reason(self.url, _primary(exc))}")

    def is_down(self):
        """Return whether a use of the database failed in the last DOWN_FOR_S with none
        succeeding since: a caller with something to fall back on need not wait for it."""
        failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < DOWN_FOR_S

    def check(self):
        """Connect once, directly (not through the pool); raise StoreUnavailable with one line
        naming the setting and the reason."""
        try:
            with psycopg.connect(self.url, **CONNECT_OPTIONS) as c:
                migrate(c)
        except psycopg.Error as exc:
            raise StoreUnavailable(connect_line(self.url, exc)) from exc

    def listener(self):
        """Return this process's Listener of the database: one LISTEN connection per process,
        shared by every subscriber."""
        return listener_for(self.url)

    def close(self):
        """Close this process's pool and stop its listener."""
        stop_listener(self.url)
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool, self._pid = None, None


def connect_line(url, exc):
    """Return one line naming NNSERVE_DATABASE_URL and why it failed, without the password."""
    return f"NNSERVE_DATABASE_URL ({redacted(url)}): cannot use the database: " \
           f"{_reason(url, str(exc) or type(exc).__name__)}"


def _primary(exc):
    """Return the server's one-line message of exc (no DETAIL, HINT or CONTEXT), else the
    end of its text's first line (a refused connection: what follows the last "failed: ",
    not the address; a pool timeout)."""
    diag = getattr(exc, "diag", None)
    message = diag.message_primary if diag is not None else None
    first = next(iter(str(exc).splitlines()), "").rsplit("failed: ", 1)[-1]
    return message or first or type(exc).__name__


def _reason(url, text):
    """Return text on one line, never holding url's password."""
    reason = " ".join(text.split())
    password = urlsplit(url).password if "://" in url else None
    return reason.replace(password, "***") if password else reason


def redacted(url):
    """Return url with its password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
