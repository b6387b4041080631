"""ModelStore on real files: round trips, concurrent and killed writers, hostile files, names."""

import errno
import functools
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

from service.errors import (
    CorruptModel,
    InvalidInput,
    InvalidModelFile,
    InvalidName,
    ModelNotFound,
    StoreFull,
    StoreUnavailable,
)
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import MAX_POINTS, ModelStore, map_os_error, npzfile, weights_sha256

# A child process: trains a small model (hidden layers of `width` units), waits for a common
# start time, then saves it count times (forever when count is -1), printing each version
# as soon as it is saved; with n > 0 it stores n linear points instead of XOR's 21.
SAVER = """
import sys, time
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import ModelStore

root, name, count, seed, start, n, width = sys.argv[1:]
x, y = datasets.xor()
arch = Architecture((2, int(width), int(width), 1))
model, _ = Model.train(arch, x, y, TrainingConfig(epochs=5, seed=int(seed)))
points = datasets.linear(int(n)) if int(n) else (x, y)
store = ModelStore(root)
while time.time() < float(start):
    time.sleep(0.001)
saved = 0
while saved != int(count):
    meta = store.save(name, model, dataset={"kind": "child"}, metrics={"seed": int(seed)},
                      history={}, x=points[0], y=points[1])
    print(meta["version"], flush=True)
    saved += 1
"""
DELETER = """
import sys
from service.store import ModelStore

root, name, version = sys.argv[1:]
ModelStore(root).delete(name, int(version))
"""


@pytest.fixture(scope="module")
def trained():
    """Return (model, result, x, y): the lab's XOR network after a short training."""
    x, y = datasets.xor()
    model, result = Model.train(Architecture(), x, y, TrainingConfig(epochs=50))
    return model, result, x, y


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "store")


def save(store, name, trained, **overrides):
    """Return the meta of a save of the trained XOR model under name."""
    model, result, x, y = trained
    kwargs = {
        "dataset": {"kind": "xor", "n": len(x)},
        "metrics": {"loss": result.loss, "accuracy": result.accuracy, "epochs": result.epochs_run,
                    "seconds": 0.01, "stop_reason": result.stop_reason},
        "history": result.history,
        "x": x,
        "y": y,
    }
    return store.save(name, model, **{**kwargs, **overrides})


def delete_in_child(root, name, version):
    subprocess.run([sys.executable, "-c", DELETER, str(root), name, str(version)], timeout=60,
                   check=True)


def start_savers(root, name, count, processes, start, n=0, width=4):
    """Return SAVER children with seeds 0, 1, ..., their stdout piped."""
    children = []
    for seed in range(processes):
        args = [str(a) for a in (root, name, count, seed, start, n, width)]
        children.append(subprocess.Popen([sys.executable, "-c", SAVER, *args],
                                         stdout=subprocess.PIPE, text=True))
    return children


def assert_same_weights(a, b):
    arrays_a, _ = a.to_arrays()
    arrays_b, _ = b.to_arrays()
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert arrays_a[key].dtype == arrays_b[key].dtype
        assert np.array_equal(arrays_a[key], arrays_b[key])


# Round trips


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_is_bit_exact(store, dtype):
    x, y = datasets.xor()
    model, result = Model.train(Architecture(), x, y, TrainingConfig(epochs=50, dtype=dtype))
    saved = save(store, "xor", (model, result, x, y))
    loaded, meta = store.load("xor")
    assert_same_weights(model, loaded)
    assert loaded.params["theta"].dtype == np.dtype(dtype)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert meta == saved
    assert loaded.arch == model.arch and loaded.config == model.config


def test_meta_layout(store, trained):
    model, result, x, y = trained
    meta = save(store, "xor", trained)
    assert meta["format"] == 1 and meta["name"] == "xor" and meta["version"] == 1
    assert meta["created_at"].endswith("+00:00")
    assert meta["architecture"] == model.arch.to_dict()
    assert meta["training"] == model.config.to_dict()
    assert meta["dataset"] == {"kind": "xor", "n": 21, "class_balance": {"0": 11, "1": 10}}
    assert meta["metrics"]["accuracy"] == result.accuracy
    assert meta["history"] == result.history
    assert meta["sha256"] == weights_sha256(model.to_arrays()[0])
    assert meta["points_stored"] == 21 and meta["points_sampled"] is False
    assert store.meta("xor") == meta == store.meta("xor", 1)
    with zipfile.ZipFile(store.root / "xor" / "1.npz") as zf:
        raw = np.lib.format.read_array(io.BytesIO(zf.read("meta.npy")), allow_pickle=False)
    assert raw.shape == () and raw.dtype.kind == "U"
    assert json.loads(raw.item()) == meta
    stored_x, stored_y = store.points("xor", 1)
    assert np.array_equal(stored_x, x) and np.array_equal(stored_y, y)


def test_points_above_the_limit_are_a_seeded_bounded_sample(store, trained):
    x, y = datasets.linear(n=MAX_POINTS + 2500)
    first = save(store, "big", trained, x=x, y=y)
    save(store, "big", trained, x=x, y=y)
    sample_x, sample_y = store.points("big", 1)
    again_x, _ = store.points("big", 2)
    assert first["points_stored"] == MAX_POINTS and first["points_sampled"] is True
    assert first["dataset"]["class_balance"] == {"0": int(np.sum(y == 0)), "1": int(np.sum(y == 1))}
    assert sample_x.shape == (MAX_POINTS, 2) and sample_y.shape == (MAX_POINTS,)
    assert np.array_equal(sample_x, again_x)
    rows = {tuple(p): label for p, label in zip(x.tolist(), y.tolist(), strict=True)}
    assert all(rows[tuple(p)] == label for p, label in zip(sample_x.tolist(), sample_y.tolist(),
                                                           strict=True))


def test_long_history_is_thinned_keeping_both_ends(store, trained):
    n = 5000
    history = {"epoch": list(range(n)), "loss": np.linspace(1, 0, n), "accuracy": [0.5] * n}
    meta = save(store, "long", trained, history=history)
    assert [len(v) for v in meta["history"].values()] == [1001] * 3
    assert meta["history"]["epoch"][0] == 0 and meta["history"]["epoch"][-1] == n - 1
    assert meta["history"]["loss"][-1] == 0.0


def test_numpy_values_in_metadata_are_stored_as_plain_json(store, trained):
    meta = save(store, "xor", trained, dataset={"kind": "xor", "n": np.int64(21)},
                metrics={"epochs": np.int32(50), "loss": np.float32(0.5)},
                history={"epoch": np.arange(3), "loss": np.ones(3)})
    assert store.meta("xor") == meta
    assert meta["dataset"]["n"] == 21 and meta["history"]["epoch"] == [0, 1, 2]
    assert type(meta["metrics"]["epochs"]) is int


def test_non_finite_metadata_is_refused_on_save(store, trained):
    with pytest.raises(ValueError, match="Out of range float values"):
        save(store, "xor", trained, metrics={"loss": float("nan")})
    assert not store.root.exists()


def test_weights_hash_covers_names_dtypes_shapes_and_bytes():
    w = np.arange(6, dtype=np.float64).reshape(2, 3)
    base = weights_sha256({"W0": w, "b0": np.zeros(3)})
    assert base == weights_sha256({"b0": np.zeros(3), "W0": w.copy(order="F")})
    assert base != weights_sha256({"W0": w.astype(np.float32), "b0": np.zeros(3)})
    assert base != weights_sha256({"W0": w.reshape(3, 2), "b0": np.zeros(3)})
    assert base != weights_sha256({"W1": w, "b0": np.zeros(3)})
    assert base != weights_sha256({"W0": w + 1e-12, "b0": np.zeros(3)})


# Versions, listing, deleting


def test_versions_count_up_and_latest_is_the_highest(store, trained):
    assert [save(store, "xor", trained)["version"] for _ in range(3)] == [1, 2, 3]
    assert [m["version"] for m in store.versions("xor")] == [1, 2, 3]
    assert store.load("xor")[1]["version"] == 3
    assert store.list_models() == [{"name": "xor", "latest": 3, "versions": 3,
                                    "metrics": store.meta("xor")["metrics"]}]


def test_listing_ignores_hidden_and_foreign_entries(store, trained):
    save(store, "xor", trained)
    (store.root / ".jobs.sqlite3").write_bytes(b"SQLite format 3\0")
    (store.root / ".trash-1234").mkdir()
    (store.root / "README").write_text("not a model")
    (store.root / "UPPER").mkdir()
    (store.root / "empty").mkdir()
    (store.root / "xor" / ".tmp-abc.npz").write_bytes(b"partial")
    (store.root / "xor" / "notes.txt").write_text("not a version")
    assert [row["name"] for row in store.list_models()] == ["xor"]
    assert [m["version"] for m in store.versions("xor")] == [1]


def test_stale_temp_files_are_cleaned_on_save_and_fresh_ones_kept(store, trained):
    save(store, "xor", trained)
    old, fresh = store.root / "xor" / ".tmp-old.npz", store.root / "xor" / ".tmp-fresh.npz"
    old.write_bytes(b"left by a killed writer")
    fresh.write_bytes(b"another writer, still busy")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    save(store, "xor", trained)
    assert not old.exists() and fresh.exists()


def test_delete_one_version(store, trained):
    for _ in range(3):
        save(store, "xor", trained)
    store.load("xor", 3)
    store.delete("xor", 3)
    with pytest.raises(ModelNotFound, match="version 3"):
        store.load("xor", 3)
    assert store.load("xor")[1]["version"] == 2
    store.delete("xor", 1)
    assert [m["version"] for m in store.versions("xor")] == [2]
    with pytest.raises(ModelNotFound):
        store.delete("xor", 1)


def test_deleting_the_last_version_removes_the_model(store, trained):
    save(store, "xor", trained)
    store.delete("xor", 1)
    assert store.list_models() == []
    assert not (store.root / "xor").exists()
    with pytest.raises(ModelNotFound):
        store.load("xor")


def test_delete_whole_model_leaves_no_trace(store, trained):
    for _ in range(2):
        save(store, "xor", trained)
    save(store, "keep", trained)
    store.load("xor")
    store.delete("xor")
    assert [row["name"] for row in store.list_models()] == ["keep"]
    assert visible(store.root) == ["keep"]  # the tombstone is gone too
    for call in (store.load, store.versions, store.delete, store.meta):
        with pytest.raises(ModelNotFound):
            call("xor")
    assert save(store, "xor", trained)["version"] == 1


def test_missing_models_and_versions_are_not_found(store, trained):
    with pytest.raises(ModelNotFound):
        store.load("nothing")
    assert store.list_models() == []
    save(store, "xor", trained)
    for call in (store.load, store.meta, store.points, store.export):
        with pytest.raises(ModelNotFound, match="version 9"):
            call("xor", 9)


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0, 10**18, 10**300])
def test_versions_must_be_positive_ints(store, trained, version):
    save(store, "xor", trained)
    with pytest.raises(InvalidInput, match="integer from 1 to"):
        store.load("xor", version)
    with pytest.raises(InvalidInput):
        store.delete("xor", version)


# Cache


def test_cached_load_returns_the_same_objects_without_rereading(store, trained):
    save(store, "xor", trained)
    model, meta = store.load("xor")
    assert store.load("xor")[0] is model and store.load("xor", 1)[1] is meta


def test_cache_is_bounded_lru(tmp_path, trained):
    store = ModelStore(tmp_path, cache_size=2)
    for name in "abc":
        save(store, name, trained)
    a, b = store.load("a")[0], store.load("b")[0]
    assert store.load("a")[0] is a  # a is now the most recent
    c = store.load("c")[0]  # evicts b
    assert store.load("a")[0] is a and store.load("c")[0] is c
    assert store.load("b")[0] is not b


def test_cache_serves_a_reused_version_number_fresh(tmp_path, trained):
    # Delete and re-save at once: the new file may get the old inode number and has the
    # same size; on kernels with coarse file times only the store's exact mtime differs.
    mine, other = ModelStore(tmp_path), ModelStore(tmp_path)
    x, y = datasets.xor()
    new_model, new_result = Model.train(Architecture(), x, y, TrainingConfig(epochs=7, seed=3))
    for _ in range(20):
        save(mine, "xor", trained)
        assert mine.load("xor", 1)[1]["metrics"]["epochs"] == trained[1].epochs_run
        other.delete("xor", 1)
        assert save(other, "xor", (new_model, new_result, x, y))["version"] == 1
        model, meta = mine.load("xor", 1)
        assert_same_weights(model, new_model)
        assert meta["metrics"]["epochs"] == new_result.epochs_run
        other.delete("xor")


def test_cache_notices_saves_and_deletes_of_another_process(tmp_path, trained):
    store = ModelStore(tmp_path)
    save(store, "xor", trained)
    assert store.load("xor")[1]["version"] == 1
    (child,) = start_savers(tmp_path, "xor", 1, 1, 0)
    assert child.communicate(timeout=60)[0].split() == ["2"]
    model, meta = store.load("xor")
    assert meta["version"] == 2 and meta["metrics"] == {"seed": 0}
    delete_in_child(tmp_path, "xor", 2)
    with pytest.raises(ModelNotFound, match="version 2"):
        store.load("xor", 2)
    assert store.load("xor")[1]["version"] == 1


def test_threads_share_one_store(tmp_path, trained):
    store, errors = ModelStore(tmp_path, cache_size=2), []
    for name in "abc":
        save(store, name, trained)

    def work(k):
        try:
            for i in range(20):
                store.load("abc"[(i + k) % 3])
                if i % 5 == 0:
                    save(store, "abc"[k % 3], trained)
                store.list_models()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(row["versions"] for row in store.list_models()) == 3 + 8 * 4


# Processes


def test_concurrent_savers_get_distinct_versions(tmp_path):
    processes, count = 4, 5
    children = start_savers(tmp_path, "race", count, processes, time.time() + 1.0)
    printed = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        printed += [int(v) for v in out.split()]
    assert sorted(printed) == list(range(1, processes * count + 1))
    store = ModelStore(tmp_path)
    metas = store.versions("race")
    assert [m["version"] for m in metas] == list(range(1, processes * count + 1))
    for v in range(1, processes * count + 1):
        store.load("race", v)
    assert sorted(m["metrics"]["seed"] for m in metas) == sorted(list(range(processes)) * count)


def test_writers_killed_mid_save_leave_a_consistent_store(tmp_path):
    # Big files (a 1.3 MB network, 10,000 points) keep each save in the middle of writing
    # for a good part of the time, so some kills land there.
    rng, printed = random.Random(0), []
    for _ in range(6):
        (child,) = start_savers(tmp_path, "kill", -1, 1, 0, n=MAX_POINTS + 5000, width=400)
        printed.append(int(child.stdout.readline()))  # running and saving
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        printed += [int(v) for v in child.stdout.read().split()]
        child.wait()
        child.stdout.close()
    store = ModelStore(tmp_path)
    listed = [m["version"] for m in store.versions("kill")]
    assert "corrupt" not in str(store.versions("kill"))
    assert set(printed) <= set(listed)
    assert listed == list(range(1, len(listed) + 1))
    assert len(listed) - len(printed) <= 6  # at most one unreported save per kill
    for v in listed:
        store.load("kill", v)
    assert store.list_models()[0]["latest"] == listed[-1]
    assert all(name.startswith(".tmp-") or name[:-4].isdigit()
               for name in os.listdir(tmp_path / "kill"))


# Hostile and damaged files


class Trap:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def pack_array(a):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=True)  # pickles allowed, as an attacker would
    return f.getvalue()


def pack(members):
    """Return .npz bytes of members: arrays or raw member bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, value in members.items():
            raw = pack_array(value) if isinstance(value, np.ndarray) else value
            zf.writestr(f"{key}.npy", raw)
    return buf.getvalue()


def unpack(data):
    """Return (members, meta) of valid .npz bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n[:-4]: np.lib.format.read_array(io.BytesIO(zf.read(n))) for n in zf.namelist()}
    return members, json.loads(members["meta"].item())


def forged(data, change, rehash=True):
    """Return data after change(members, meta), with a recomputed checksum when rehash."""
    members, meta = unpack(data)
    original = members["meta"]
    change(members, meta)
    if rehash:
        meta["sha256"] = weights_sha256({k: v for k, v in members.items() if k[0] in "Wb"})
    if members["meta"] is original:  # else the change replaced the meta member itself
        members["meta"] = np.array(json.dumps(meta))
    return pack(members)


def lying_header(members, meta):
    """A W0 whose header claims 80 GB of data, backed by 16 bytes."""
    f = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**10,)}
    np.lib.format.write_array_header_1_0(f, header)
    members["W0"] = f.getvalue() + bytes(16)


def flip_weight_byte(data):
    w0 = unpack(data)[0]["W0"].tobytes()
    at = data.index(w0) + 3
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@functools.cache
def zip_bomb(valid):
    """Return a valid .npz of about 200 KB whose W0 inflates to 200 MB: a real npy of zeros."""
    members, _ = unpack(valid)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in members.items():
            if key != "W0":
                zf.writestr(f"{key}.npy", pack_array(value))
        with zf.open("W0.npy", "w", force_zip64=True) as w:
            header = {"descr": "<f8", "fortran_order": False, "shape": (25 * 2**20,)}
            np.lib.format.write_array_header_1_0(w, header)
            for _ in range(200):
                w.write(bytes(2**20))
    return buf.getvalue()


def change(fn):
    return lambda data, trap: forged(data, fn)


def set_meta(**fields):
    return change(lambda members, meta: meta.update(fields))


def pickled(data, trap):
    return forged(data, lambda m, _: m.update(W0=np.array([Trap(trap)], dtype=object)))


# case: (make(valid_bytes, trap_path) -> damaged bytes, expected text of the refusal)
DAMAGES = {
    "pickled object array": (pickled, "object arrays cannot be loaded"),
    "truncated zip": (lambda data, _: data[: len(data) // 2], "not a zip file"),
    "random bytes": (lambda *_: random.Random(1).randbytes(3000), "not a zip file"),
    "flipped byte": (lambda data, _: flip_weight_byte(data), "bad crc-32"),
    "wrong shapes": (change(lambda m, _: m.update(W0=np.zeros((3, 4)))), "shape (3, 4)"),
    "nan weights": (change(lambda m, _: m["W0"].__setitem__((0, 0), np.nan)), "non-finite"),
    "missing weights": (change(lambda m, _: m.pop("b2")), "do not match"),
    "integer weights": (change(lambda m, _: m.update(W0=np.ones((2, 4), int))), "expected a float"),
    "missing meta key": (change(lambda _, meta: meta.pop("metrics")), "'metrics' is missing"),
    "mistyped meta": (set_meta(history=[1, 2]), "'history' is missing or not a dict"),
    "garbled meta": (change(lambda m, _: m.update(meta=np.array("{not json"))), "not valid json"),
    "meta not unicode": (change(lambda m, _: m.update(meta=np.zeros(3))), "0-d unicode"),
    "nan in meta": (change(lambda m, _: m.update(meta=np.array('{"format": NaN}'))),
                    "nan is not allowed"),
    "wrong checksum": (
        lambda data, _: forged(data, lambda _, meta: meta.update(sha256="0" * 64), rehash=False),
        "checksum mismatch",
    ),
    "unknown format": (set_meta(format=2), "unknown format version 2"),
    "unknown architecture": (set_meta(architecture={"layers": [2, 1], "x": 9}), "unknown fields"),
    "points mismatch": (change(lambda m, _: m.update(train_y=m["train_y"][:-1])), "labels"),
    "points count": (set_meta(points_stored=5), "meta says 5"),
    "unexpected member": (change(lambda m, _: m.update(evil=np.zeros(1))), "unexpected"),
    "lying header": (change(lying_header), "declares more data"),
    "zip bomb": (lambda data, _: zip_bomb(data), "over the limit"),
}


@pytest.fixture(scope="module")
def valid_npz(tmp_path_factory, trained):
    """Return the bytes of a valid model file, as exported."""
    store = ModelStore(tmp_path_factory.mktemp("source"))
    save(store, "src", trained)
    return store.export("src", 1)[0]


def damaged(case, valid_npz, tmp_path):
    """Return the damaged bytes of a DAMAGES case and the path its pickle trap would create."""
    trap = tmp_path / "pickle-was-executed"
    return DAMAGES[case][0](valid_npz, trap), trap


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_stored_file_is_refused_and_others_keep_working(store, trained, valid_npz,
                                                               tmp_path, case):
    data, trap = damaged(case, valid_npz, tmp_path)
    save(store, "good", trained)
    save(store, "bad", trained)
    (store.root / "bad" / "2.npz").write_bytes(data)
    expected = DAMAGES[case][1]
    for version in (2, None):
        with pytest.raises(CorruptModel, match="model 'bad' version 2 is corrupt") as caught:
            store.load("bad", version)
        assert expected in caught.value.detail.lower()
        assert str(tmp_path) not in caught.value.detail
    with pytest.raises(CorruptModel):
        store.points("bad", 2)
    with pytest.raises(CorruptModel):
        store.export("bad", 2)
    listing = {row["name"]: row for row in store.list_models()}
    assert expected in listing["bad"]["corrupt"].lower() and "metrics" in listing["good"]
    assert listing["bad"]["latest"] == 2 and listing["bad"]["versions"] == 2
    first, second = store.versions("bad")
    assert first["version"] == 1 and second["version"] == 2 and "corrupt" in second
    store.load("good")
    store.load("bad", 1)
    assert not trap.exists()


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_upload_is_refused(store, valid_npz, tmp_path, case):
    data, trap = damaged(case, valid_npz, tmp_path)
    started = time.perf_counter()
    with pytest.raises(InvalidModelFile, match="uploaded model file is invalid") as caught:
        store.import_npz("up", data)
    assert time.perf_counter() - started < 0.2  # inflating the zip bomb takes over 0.5 s
    assert DAMAGES[case][1] in caught.value.detail.lower()
    assert store.list_models() == [] and not trap.exists()


def test_zip_bomb_is_small_and_would_inflate_to_200_mb(valid_npz):
    bomb = zip_bomb(valid_npz)
    assert len(bomb) < 2**20
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf:
        assert zf.getinfo("W0.npy").file_size > 200 * 10**6


def test_meta_reads_only_the_meta_member(store, trained, valid_npz):
    save(store, "xor", trained)
    nan = DAMAGES["nan weights"][0](valid_npz, None)
    (store.root / "xor" / "2.npz").write_bytes(nan)
    assert store.meta("xor", 2)["version"] == 2
    with pytest.raises(CorruptModel, match="non-finite"):
        store.load("xor", 2)


# Export and import


def test_export_import_round_trip(store, trained):
    saved = save(store, "xor", trained)
    data, filename = store.export("xor", 1)
    assert filename == "xor-v1.npz"
    assert data == (store.root / "xor" / "1.npz").read_bytes()
    imported = store.import_npz("copy", data)
    assert imported["name"] == "copy" and imported["version"] == 1
    again = store.import_npz("xor", data)
    assert again["version"] == 2
    for key in ("architecture", "training", "dataset", "metrics", "history", "sha256"):
        assert imported[key] == saved[key]
    assert_same_weights(store.load("copy")[0], trained[0])
    assert np.array_equal(store.points("copy")[0], trained[2])


def test_import_drops_unknown_meta_keys(store, valid_npz):
    data = forged(valid_npz, lambda _, meta: meta.update(extra="x" * 100))
    assert "extra" not in store.import_npz("up", data)


# Names


BAD_NAMES = ["../x", "/etc", "a/b", "a\\b", "a\x00b", ".", "..", ".hidden", "UPPER", "ａbc",
             "xоr", "a" * 65, "", "abc\n", " abc", "-x", "a b", None, 3, b"abc", ["a"]]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_everywhere(store, trained, valid_npz, name):
    calls = [
        lambda: save(store, name, trained),
        lambda: store.load(name),
        lambda: store.meta(name),
        lambda: store.versions(name),
        lambda: store.points(name),
        lambda: store.delete(name),
        lambda: store.export(name),
        lambda: store.import_npz(name, valid_npz),
    ]
    for call in calls:
        with pytest.raises(InvalidName, match="invalid model name"):
            call()
    assert not store.root.exists() or os.listdir(store.root) == []


@pytest.mark.parametrize("name", ["a", "9", "xor-2.v1_b", "a" * 64, "a..b"])
def test_good_names_are_accepted(store, trained, name):
    save(store, name, trained)
    assert store.load(name)[1]["name"] == name
    assert visible(store.root) == [name]


def visible(root):
    """Return the entries of root that are not hidden (the store's own files are)."""
    return sorted(name for name in os.listdir(root) if not name.startswith("."))


# Writability and OS errors


def test_check_writable_creates_the_store_and_leaves_only_its_counter(tmp_path):
    store = ModelStore(tmp_path / "new" / "store")
    assert store.check_writable() is None
    assert os.listdir(store.root) == [".generation"]  # made there, so a worker can bump it


def make_unwritable(paths):
    """Make directories refuse writes, even to root: chmod, or the immutable flag for root."""
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(0o555)
        return lambda: [path.chmod(0o755) for path in paths]
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
    undo = lambda: subprocess.run(["chattr", "-i", *map(str, paths)], check=True)  # noqa: E731
    if done.returncode != 0:
        undo()
        pytest.skip("running as root without chattr +i: no way to make a directory read-only")
    return undo


def test_unwritable_store_is_unavailable_but_still_serves_reads(store, trained):
    save(store, "xor", trained)
    undo = make_unwritable([store.root, store.root / "xor"])
    try:
        for call in (store.check_writable, lambda: save(store, "xor", trained),
                     lambda: store.delete("xor", 1), lambda: store.delete("xor")):
            with pytest.raises(StoreUnavailable, match="model store unavailable") as caught:
                call()
            assert str(store.root) not in caught.value.detail
        assert store.load("xor")[1]["version"] == 1
        assert [row["name"] for row in store.list_models()] == ["xor"]
    finally:
        undo()


@pytest.mark.parametrize(
    ("code", "error"),
    [(errno.EROFS, StoreUnavailable), (errno.EACCES, StoreUnavailable),
     (errno.EPERM, StoreUnavailable), (errno.ENOSPC, StoreFull), (errno.EDQUOT, StoreFull)],
)
def test_os_errors_map_to_domain_errors_without_paths(code, error):
    mapped = map_os_error(OSError(code, os.strerror(code), "/secret/store/xor/1.npz"), "save 'a'")
    assert isinstance(mapped, error)
    assert "/secret" not in mapped.detail and "save 'a'" in mapped.detail


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOTDIR, errno.ENAMETOOLONG])
def test_other_os_errors_make_the_store_unavailable(code):
    assert isinstance(map_os_error(OSError(code, os.strerror(code)), "read"), StoreUnavailable)


def test_a_repeated_load_costs_one_stat_of_the_folder(store, trained, monkeypatch):
    save(store, "xor", trained)
    os.utime(store.root / "xor", ns=(0, time.time_ns() - 10**9))  # settled a second ago
    first, _ = store.load("xor")
    calls, real_stat = [], os.stat

    def counted_stat(*args, **kwargs):
        calls.append(args)
        return real_stat(*args, **kwargs)

    monkeypatch.setattr("service.store.os.stat", counted_stat)
    monkeypatch.setattr("service.store.os.scandir", None)  # a listing would now fail
    again, meta = store.load("xor")
    assert again is first and meta["version"] == 1
    assert [tuple(map(os.fspath, args)) for args in calls] == [(os.fspath(store.root / "xor"),)]


def test_a_folder_that_cannot_be_read_makes_the_store_unavailable(store, trained, monkeypatch):
    save(store, "xor", trained)

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr("service.store.os.stat", refused)
    with pytest.raises(StoreUnavailable, match="read model 'xor'") as caught:
        store.load("xor")
    assert str(store.root) not in caught.value.detail


def test_a_folder_changed_just_now_is_not_trusted(store, trained):
    save(store, "xor", trained)
    store.load("xor")
    other = ModelStore(store.root)  # another process's store
    save(other, "xor", trained)
    assert store.load("xor")[1]["version"] == 2
    other.delete("xor", 2)
    assert store.load("xor")[1]["version"] == 1



def test_listing_reads_each_file_once_until_it_changes(store, trained, monkeypatch):
    import service.store as store_module

    reads = []
    real = store_module.read_meta_only
    monkeypatch.setattr(store_module, "read_meta_only",
                        lambda f: reads.append(f.name) or real(f))
    for name in ("a", "b"):
        save(store, name, trained)
    first = store.list_models()
    assert len(reads) == 2
    assert store.list_models() == first and len(reads) == 2  # a stat each, no parse
    save(store, "a", trained)
    rows = store.list_models()
    assert len(reads) == 3 and reads[-1].endswith("a/2.npz")
    assert [(r["name"], r["latest"]) for r in rows] == [("a", 2), ("b", 1)]


# .npy headers: the form np.save writes is read without NumPy's literal_eval


def _npy(a, version=None):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, version=version, allow_pickle=False)
    return f.getvalue()


@pytest.mark.parametrize("a", [
    np.zeros((4, 4)), np.zeros(3), np.array("x" * 70), np.zeros((2, 3), order="F"),
    np.zeros((0, 2)), np.zeros((1,), np.float32), np.zeros((2, 2, 2), ">i4"), np.array(1.5),
])
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_npy_headers_np_save_writes_are_read_as_numpy_reads_them(a, version):
    data = _npy(a, version)
    f = io.BytesIO(data)
    parsed = npzfile._header(f)
    after = f.tell()
    f = io.BytesIO(data)
    assert np.lib.format.read_magic(f) == version
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}[version]
    assert parsed == reader(f) and after == f.tell()
    size = 2 if version == (1, 0) else 4
    assert npzfile.NPY_HEADER.fullmatch(data[8 + size : after])  # the fast path took it


def test_npy_headers_in_another_form_go_through_numpys_parser():
    header = b"{'shape': (2,),'descr':'<f8','fortran_order':False}"
    header += b" " * (63 - len(header) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    assert not npzfile.NPY_HEADER.fullmatch(header)
    f = io.BytesIO(data + np.arange(2.0).tobytes())
    assert npzfile._header(f) == ((2,), False, np.dtype("<f8"))
    assert f.tell() == len(data)


def test_an_object_array_in_the_fast_form_is_refused():
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x80" * 8
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("W0.npy", data)
    with zipfile.ZipFile(buffer) as zf, pytest.raises(ValueError, match="object arrays"):
        npzfile._member(zf, "W0")
