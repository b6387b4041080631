"""PgStore: model versions in PostgreSQL, shared by every host. A version's row holds its
.npz bytes, so a version and its bytes commit in one transaction.

Numbering: model_names holds each name's high-water mark, moved in the save's transaction
(its row lock orders the saves of one name across hosts), so a number is taken by one save
and never given again while the name exists; delete(name) removes the row, and numbering
starts again at 1. Aliases and figures reference their version and go with it (ON DELETE
CASCADE). Every change moves store_generation and NOTIFYs in its own transaction, which is
how other processes' memory (pgmemory.py) learns of it. Bytes are validated in full
whenever they are read (npzfile.py), as the file store does.
"""

import io
import json
import logging
from contextlib import contextmanager

import psycopg
from psycopg.types.json import Json

from ..errors import (
    AliasNotFound,
    CorruptModel,
    LeaseLost,
    ModelNotFound,
    StoreFull,
    StoreUnavailable,
)
from ..names import check_alias, check_name, check_version
from ..pg.database import CONNECT_TIMEOUT_S, PING_TIMEOUT_S
from ..timestamps import utc_iso
from .base import MAX_FIGURES, ModelStore, read_latest
from .disk import FIGURE_RE
from .npzfile import DAMAGE, damage_reason, read_contents, write_npz
from .pgmemory import CHANNEL, PgMemory

log = logging.getLogger("nnserve.store")
CHANGED = "UPDATE store_generation SET value = value + 1 RETURNING value"
NEXT_VERSION = ("INSERT INTO model_names VALUES (%s, 1) ON CONFLICT (name) DO UPDATE"
                " SET last_version = model_names.last_version + 1 RETURNING last_version")
LATEST = "ORDER BY version DESC LIMIT 1"
LOCK_SPACE = 0x6E6E  # the first key of the models' advisory locks ("nn"): no other user's
REFUSALS = (ModelNotFound, AliasNotFound, LeaseLost, psycopg.errors.IntegrityError)


class PgStore(ModelStore):
    """Versioned models in the database of db (a service.pg.Database), with this process's
    memory of them."""

    def __init__(self, db, cache_size=32):
        self.db = db
        self.memory = PgMemory(db.listener(), cache_size)
        self.cache = self.memory.cache

    # ----- writing -----

    @contextmanager
    def _change(self, name):
        """Yield a connection in a transaction that changes name, holding the name's lock
        (changes of one model are serialised: an alias set and a delete of its version
        would otherwise lock their rows in opposite orders and deadlock); before its commit
        the generation moves and every process is told (the NOTIFY is sent at commit)."""
        generation, refused = None, False
        try:
            with self.db.connection() as conn:
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                     (LOCK_SPACE, name))
                        yield conn
                        generation = conn.execute(CHANGED).fetchone()[0]
                        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{name} {generation}"))
                except psycopg.errors.DiskFull as exc:
                    raise StoreFull(f"cannot change model {name!r}: the database is full") from exc
        except REFUSALS:
            refused = True  # raised inside the transaction, which rolled back: nothing changed
            raise
        finally:  # this process sees its own change at once; an unknown outcome, everything
            if not refused:
                self.memory.changed(name, generation)

    def _add(self, name, arrays, meta, x, y, fence=None):
        """Return meta as stored in the next free version of name, in one transaction with
        its bytes (and with the fence's check, when the fence's jobs share the database)."""
        with self._change(name) as conn:
            if fence is not None:
                fence.hold(self.db, conn)
            version = conn.execute(NEXT_VERSION, (name,)).fetchone()[0]
            stamped = {**meta, "name": name, "version": version, "created_at": utc_iso()}
            f = io.BytesIO()
            write_npz(f, arrays, stamped, x, y)
            conn.execute("INSERT INTO model_versions (name, version, sha256, meta, bytes)"
                         " VALUES (%s, %s, %s, %s, %s)",
                         (name, version, meta["sha256"], Json(stamped), f.getvalue()))
            if fence is not None:
                fence.saved(self.db, conn, stamped)
        return stamped

    def delete(self, name, version=None):
        """Remove one version, or the whole model when version is None, with their aliases
        and figures."""
        check_name(name)
        version = None if version is None else check_version(version)
        with self._change(name) as conn:
            if version is not None:
                if not conn.execute("DELETE FROM model_versions WHERE name = %s AND version = %s",
                                    (name, version)).rowcount:
                    raise ModelNotFound(name, version)
            else:  # the name first: its row lock waits for a save of it under way
                conn.execute("DELETE FROM model_names WHERE name = %s", (name,))
                had_versions = conn.execute("DELETE FROM model_versions WHERE name = %s",
                                            (name,)).rowcount
        self.cache.forget(name, version)
        if version is None and not had_versions:  # a name left without versions is gone too
            raise ModelNotFound(name)

    def set_alias(self, name, alias, version):
        """Point alias at version of name; ModelNotFound naming the version if it is absent."""
        check_name(name), check_alias(alias), check_version(version)
        try:
            with self._change(name) as conn:
                conn.execute("INSERT INTO model_aliases VALUES (%s, %s, %s) ON CONFLICT"
                             " (name, alias) DO UPDATE SET version = EXCLUDED.version",
                             (name, alias, version))
        except psycopg.errors.ForeignKeyViolation:
            raise ModelNotFound(name, version) from None

    def delete_alias(self, name, alias):
        """Remove an alias; AliasNotFound when name has none of that name."""
        check_name(name), check_alias(alias)
        with self._change(name) as conn:
            if not conn.execute("DELETE FROM model_aliases WHERE name = %s AND alias = %s",
                                (name, alias)).rowcount:
                raise AliasNotFound(name, alias)

    def put_figure(self, name, version, key, png):
        """Keep png for a version under key (best effort: a failing database is logged)."""
        check_name(name)
        if not FIGURE_RE.fullmatch(key):
            raise ValueError(f"bad figure key {key!r}")
        try:
            with self.db.connection() as conn, conn.transaction():
                row = conn.execute(
                    "INSERT INTO model_figures SELECT id, %s, %s FROM model_versions"
                    " WHERE name = %s AND version = %s ON CONFLICT (version_id, key)"
                    " DO UPDATE SET png = EXCLUDED.png, kept_at = now() RETURNING version_id",
                    (key, png, name, version)).fetchone()
                if row is not None:  # the version's oldest beyond MAX_FIGURES go
                    conn.execute("DELETE FROM model_figures WHERE version_id = %s AND key IN"
                                 " (SELECT key FROM model_figures WHERE version_id = %s"
                                 " ORDER BY kept_at DESC, key OFFSET %s)",
                                 (row[0], row[0], MAX_FIGURES))
        except (StoreUnavailable, psycopg.Error) as exc:
            log.warning("figure of model %r version %s not kept: %s", name, version, exc)

    # ----- reading -----

    def load(self, name, version=None):
        """Return (model, meta) of a version (None: latest); both are shared, do not mutate.

        While the database cannot be asked, a version this process has loaded is served."""
        check_name(name)
        version = None if version is None else check_version(version)
        return read_latest(version, lambda: self._load(name, version))

    def _load(self, name, version):
        state = self.memory.state(name)
        hit = state is not None and self.cache.hit(name, version, state)
        if hit:
            return hit
        last = self.cache.last(name, version) if state is None else None
        if last is not None and self.db.is_down():
            return last  # the database just failed: serve what is loaded without waiting
        try:  # not long a wait for a version held already
            found, model, meta = self._fetch(name, version,
                                             PING_TIMEOUT_S if last else CONNECT_TIMEOUT_S)
        except StoreUnavailable:
            last = self.cache.last(name, version)
            if last is None:
                raise
            return last
        if state is not None:
            self.cache.resolve(name, version, state, found)
        return model, meta

    def _fetch(self, name, version, timeout=CONNECT_TIMEOUT_S):
        """Return (version found, model, meta) of a version of name (None: latest), reading
        its bytes only when the cache lacks them: one query (a cold load is on a request's
        path: benchmarks/RESULTS.md, "cold load from the database")."""
        where, args = self._where(name, version)
        known = self.cache.identity(name, version) or 0
        with self.db.connection(timeout) as conn:
            row = conn.cursor(binary=True).execute(  # bytea: binary is half text's cost
                f"SELECT version, id, CASE WHEN id = %s THEN NULL ELSE bytes END"
                f" FROM model_versions WHERE {where}", (known, *args)).fetchone()
            if row is None:
                raise ModelNotFound(name, version)
            found, row_id, data = row
            hit = self.cache.model(name, found, row_id)
            if hit:
                return found, *hit
            if data is None:  # the cache dropped it meanwhile
                row = conn.cursor(binary=True).execute(
                    "SELECT bytes FROM model_versions WHERE id = %s", (row_id,)).fetchone()
                if row is None:  # deleted meanwhile
                    self.cache.forget(name, found)
                    raise ModelNotFound(name, found)
                data = row[0]
        model, meta, _, _ = self._decode(name, found, row_id, data)
        self.cache.keep(name, found, row_id, model, meta)
        return found, model, meta

    def meta(self, name, version=None):
        """Return the meta of a version (None: latest), as stored beside its bytes."""
        return self._row(name, version, "meta")[0]

    def versions(self, name):
        """Return the meta of each version of name, oldest first; damaged: {version, corrupt}."""
        check_name(name)
        with self.db.connection() as conn:
            rows = conn.execute("SELECT version, id, meta FROM model_versions WHERE name = %s"
                                " ORDER BY version", (name,)).fetchall()
        if not rows:
            raise ModelNotFound(name)
        damaged = self._damaged([(name, version, row_id) for version, row_id, _ in rows])
        return [{"version": version, "corrupt": damaged[row_id]} if row_id in damaged else meta
                for version, row_id, meta in rows]

    def list_models(self):
        """Return [{name, latest, versions, metrics or corrupt}] for every model, by name."""
        query = ("SELECT DISTINCT ON (name) name, version, id, meta -> 'metrics',"
                 " count(*) OVER (PARTITION BY name) FROM model_versions"
                 " ORDER BY name, version DESC")
        with self.db.connection() as conn:
            try:
                rows = conn.execute(query).fetchall()
            except psycopg.errors.UntranslatableCharacter:
                # a meta kept before uploads refused "\u0000" (or written by hand): the
                # database cannot take a JSON operator to it, so this once Python does
                rows = [(name, version, row_id, json.loads(meta).get("metrics"), count)
                        for name, version, row_id, meta, count in conn.execute(
                            query.replace("meta -> 'metrics'", "meta::text")).fetchall()]
        rows.sort(key=lambda row: row[0])  # by code point, as the file store lists
        damaged = self._damaged([(name, version, row_id) for name, version, row_id, _, _ in rows])
        listed = []
        for name, version, row_id, metrics, count in rows:
            row = {"name": name, "latest": version, "versions": count}
            if row_id in damaged:
                row["corrupt"] = damaged[row_id]
            else:
                row["metrics"] = metrics
            listed.append(row)
        return listed

    def points(self, name, version=None):
        """Return (x, y): the training points stored with a version (None: latest)."""
        data, found, row_id = self._row(name, version, "bytes")
        _, _, x, y = self._decode(name, found, row_id, data)
        return x, y

    def export(self, name, version=None):
        """Return (bytes, filename) of a version (None: latest), checked before it leaves."""
        data, found, row_id = self._row(name, version, "bytes")
        self._decode(name, found, row_id, data)
        return data, f"{name}-v{found}.npz"

    def aliases(self, name):
        """Return {alias: version} of name, by alias (empty when it has none)."""
        check_name(name)
        state = self.memory.state(name)
        kept = self.memory.aliases(name, state)
        if kept is not None:
            return kept
        last = self.memory.last_aliases(name) if state is None else None
        if last is not None and self.db.is_down():
            return last  # as a loaded version is served: an alias's prediction goes on
        try:
            with self.db.connection(PING_TIMEOUT_S if last is not None else
                                    CONNECT_TIMEOUT_S) as conn:
                found = dict(sorted(conn.execute(  # by code point, whatever the collation
                    "SELECT alias, version FROM model_aliases WHERE name = %s", (name,))))
        except StoreUnavailable:
            if last is None:
                raise
            return last
        self.memory.keep_aliases(name, state, found)
        return found

    def figure(self, name, version, key):
        """Return the PNG kept for a version under key, or None."""
        check_name(name)
        try:
            with self.db.connection() as conn:
                row = conn.execute(
                    "SELECT f.png FROM model_figures f JOIN model_versions v ON v.id ="
                    " f.version_id WHERE v.name = %s AND v.version = %s AND f.key = %s",
                    (name, version, key)).fetchone()
        except StoreUnavailable:
            return None  # drawn again
        return None if row is None else bytes(row[0])

    def ping(self):
        """Return None if versions can be written and read now; else raise StoreUnavailable
        (within PING_TIMEOUT_S: a readiness probe's timeout is short)."""
        with self.db.connection(PING_TIMEOUT_S) as conn:
            writable = conn.execute("SELECT NOT pg_is_in_recovery() AND"
                                    " current_setting('transaction_read_only') = 'off'"
                                    " FROM store_generation").fetchone()
        if not (writable and writable[0]):
            raise StoreUnavailable("cannot save models: the database is read-only")

    # ----- helpers -----

    def _where(self, name, version):
        """Return (SQL condition and order, args) selecting a version of name (None: latest)."""
        check_name(name)
        if version is None:
            return f"name = %s {LATEST}", (name,)
        return "name = %s AND version = %s", (name, check_version(version))

    def _row(self, name, version, column):
        """Return (column, version, row id) of a version of name (None: latest)."""
        where, args = self._where(name, version)
        with self.db.connection() as conn:
            row = conn.cursor(binary=column == "bytes").execute(
                f"SELECT {column}, version, id FROM model_versions WHERE {where}", args).fetchone()
        if row is None:
            if version is not None:  # gone, though this process may still hold it (its
                self.cache.forget(name, version)  # notification not in): a load reads anew
            raise ModelNotFound(name, version)
        return row

    def _decode(self, name, version, row_id, data):
        """Return (model, meta, x, y) of a version's bytes, validated in full; CorruptModel."""
        try:
            model, meta, x, y = read_contents(io.BytesIO(data))
        except DAMAGE as exc:
            reason = damage_reason(exc)
            detail = f"model {name!r} version {version} is corrupt: {reason}"
            raise CorruptModel(detail, reason=reason) from None
        self.cache.mark_verified(name, version, row_id)
        return model, {**meta, "name": name, "version": version}, x, y

    def _damaged(self, located):
        """Return {row id: reason} of the rows located (name, version, row id) that are
        damaged, each validated in full once per process (a listing then reads no bytes)."""
        unchecked = {row_id: (name, version) for name, version, row_id in located
                     if not self.cache.is_verified(name, version, row_id)}
        if not unchecked:
            return {}
        with self.db.connection() as conn:
            rows = conn.cursor(binary=True).execute(
                "SELECT id, bytes FROM model_versions WHERE id = ANY(%s)",
                (list(unchecked),)).fetchall()
        damaged = {}
        for row_id, data in rows:
            try:
                self._decode(*unchecked[row_id], row_id, data)
            except CorruptModel as exc:
                damaged[row_id] = exc.extra["reason"]
        return damaged
