"""ModelStore: the interface of every model store, and what a new version holds.

A store keeps versions 1, 2, 3, ... of each model name; "latest" is the highest. A
version is written once, whole, and never changed: its weights, its metadata and a sample
of its training points, in the .npz format of npzfile.py.
"""

import io
import json
from abc import ABC, abstractmethod

import numpy as np

from ..errors import AliasNotFound, InvalidModelFile, ModelNotFound
from ..names import check_alias, check_name
from ..nn.datasets import check_dataset
from ..nn.history import thin_history
from .npzfile import (
    DAMAGE,
    FORMAT,
    META_TYPES,
    damage_reason,
    plain_json,
    read_contents,
    sample_points,
    weights_sha256,
)
from .uploads import bounded_meta

# Figures kept beside one version (every kind and size together), the least recently
# drawn dropped beyond: each ?width=&height= is drawn and kept, and reads need no token.
MAX_FIGURES = 16
LATEST_ATTEMPTS = 5  # reads of the latest version a run of deletes may send round again


def read_latest(version, read):
    """Return read(), a read of a version (None: the latest) in more than one step. For the
    latest, a ModelNotFound naming a version (deleted between the steps: the latest was
    resolved, then gone) reads again, so the answer is the next latest or the model's 404,
    not a 404 naming a version nobody asked for."""
    for _ in range(LATEST_ATTEMPTS - 1):
        try:
            return read()
        except ModelNotFound as exc:
            if version is not None or exc.version is None:
                raise
    return read()


class ModelStore(ABC):
    """Versioned models, shared by every process of the service (and every host, where the
    store is shared).

    Promises of every implementation: a save is atomic (a version is whole or absent, even
    across a crash) and never overwrites one; a version number is taken by one save only
    and never given again while the name exists (MLflow's rule: deleting versions, even
    every one, keeps the name's high-water mark; delete(name) removes the name, and its
    numbering starts again at 1);
    a read validates what it reads in full before building a model (damaged or hostile
    bytes are CorruptModel, never executed); a load may answer from memory, but sees a save
    or delete made in its process by its next call, and one made anywhere else as soon as
    it is told (files on one host: the next call; PostgreSQL: when the notification
    arrives, within a second at worst when one was lost). Names and versions are checked
    (InvalidName, InvalidInput); a missing one is ModelNotFound; a failing medium is
    StoreUnavailable or StoreFull. An alias names one version of a model (at most one per
    alias); it goes with its version when that is deleted.
    """

    def save(self, name, model, *, dataset, metrics, history, x, y, sweep=None, job=None,
             fence=None):
        """Return the meta of a new version of name holding model, its points and metadata;
        sweep, when given, is the sweep trial it came from ({id, trial, parameters}); job,
        the id of the training job that saved it (meta "job"); fence,
        when given (a job's jobs.backend.Fence), must hold for the version to be added
        (LeaseLost), checked in the version's own transaction where the store can."""
        check_name(name)
        x, y = check_dataset(x, y)
        arrays, meta = model.to_arrays()
        kept_x, kept_y = sample_points(x, y)
        balance = {"0": int(np.count_nonzero(y == 0)), "1": int(np.count_nonzero(y == 1))}
        meta.update(
            format=FORMAT,
            dataset={**dataset, "class_balance": balance},
            metrics=dict(metrics),
            history=thin_history(history),
            sha256=weights_sha256(arrays),
            points_stored=len(kept_x),
            points_sampled=len(kept_x) < len(x),
        )
        if sweep is not None:
            meta["sweep"] = sweep
        if job is not None:
            meta["job"] = job
        return self._add(name, arrays, _normalised(meta), kept_x, kept_y, fence)

    def import_npz(self, name, data, check=None):
        """Return the meta of a new version of name made from uploaded .npz bytes, validated
        as a stored file is (InvalidModelFile); check(model), when given, may refuse the valid
        model (limits) before it is saved."""
        check_name(name)
        try:
            model, meta, x, y = read_contents(io.BytesIO(data))
        except DAMAGE as exc:
            reason = damage_reason(exc)
            raise InvalidModelFile(f"uploaded model file is invalid: {reason}",
                                   reason=reason) from None
        if check is not None:
            check(model)
        arrays, _ = model.to_arrays()
        kept = bounded_meta({key: meta[key] for key in META_TYPES})  # unknown keys dropped
        meta = _normalised({**kept, "sha256": weights_sha256(arrays)})
        return self._add(name, arrays, meta, x, y)

    @abstractmethod
    def _add(self, name, arrays, meta, x, y, fence=None):
        """Return meta stamped with name, version and created_at, as stored in the next free
        version of name (atomic, never overwriting), once fence (if any) holds."""

    @abstractmethod
    def load(self, name, version=None):
        """Return (model, meta) of a version (None: latest); both are shared, do not mutate."""

    @abstractmethod
    def meta(self, name, version=None):
        """Return the meta of a version (None: latest)."""

    @abstractmethod
    def versions(self, name):
        """Return the meta of each version of name, oldest first; a damaged one as
        {version, corrupt: reason}; ModelNotFound when it has none."""

    @abstractmethod
    def list_models(self):
        """Return [{name, latest, versions, metrics or corrupt}] for every model, by name."""

    @abstractmethod
    def points(self, name, version=None):
        """Return (x, y): the training points stored with a version (None: latest)."""

    @abstractmethod
    def export(self, name, version=None):
        """Return (bytes, filename) of a version's .npz (None: latest), checked before it
        leaves."""

    @abstractmethod
    def delete(self, name, version=None):
        """Remove one version, or the whole model when version is None, with their aliases."""

    @abstractmethod
    def aliases(self, name):
        """Return {alias: version} of name, by alias (empty when it has none)."""

    @abstractmethod
    def set_alias(self, name, alias, version):
        """Point alias at version of name, moving it if it pointed elsewhere; ModelNotFound
        naming the version when there is no such version (then no alias is left to it)."""

    @abstractmethod
    def delete_alias(self, name, alias):
        """Remove an alias; AliasNotFound when name has none of that name."""

    def alias_version(self, name, alias):
        """Return the version alias points at; AliasNotFound when there is no such alias."""
        version = self.aliases(check_name(name)).get(check_alias(alias))
        if version is None:
            raise AliasNotFound(name, alias)
        return version

    @abstractmethod
    def figure(self, name, version, key):
        """Return the PNG bytes kept for a version under key (a short [a-z0-9-] string), or
        None when none is kept."""

    @abstractmethod
    def put_figure(self, name, version, key, png):
        """Keep png for a version under key, readable by every process, removed with the
        version; nothing is kept for a version that is gone. Best effort: never raises for
        the medium (a figure can be drawn again)."""

    @abstractmethod
    def ping(self):
        """Return None if versions can be written and read now; else raise a store error."""


def _normalised(meta):
    """Return meta as JSON reads it back: what cannot be stored fails before anything is
    written, and the meta a save returns equals what a read returns."""
    return json.loads(json.dumps(meta, allow_nan=False, default=plain_json))
