"""The model store interface, run against every store: round trips, versions, listing,
deleting, export and import, names, the cache, threads."""

import threading
import time

import numpy as np
import pytest

from service.errors import InvalidInput, InvalidName, LeaseLost, ModelNotFound
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import MAX_POINTS, weights_sha256
from service.store.base import MAX_FIGURES

from .storekit import assert_same_weights, save

# ----- round trips -----


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
    assert store.list_models() == []


def test_weights_hash_covers_names_dtypes_shapes_and_bytes():
    w = np.arange(6, dtype=np.float64).reshape(2, 3)
    base = weights_sha256({"W0": w, "b0": np.zeros(3)})
    assert base == weights_sha256({"b0": np.zeros(3), "W0": w.copy(order="F")})
    assert base != weights_sha256({"W0": w.astype(np.float32), "b0": np.zeros(3)})
    assert base != weights_sha256({"W0": w.reshape(3, 2), "b0": np.zeros(3)})
    assert base != weights_sha256({"W1": w, "b0": np.zeros(3)})
    assert base != weights_sha256({"W0": w + 1e-12, "b0": np.zeros(3)})


# ----- versions, listing, deleting -----


def test_versions_count_up_and_latest_is_the_highest(store, trained):
    assert [save(store, "xor", trained)["version"] for _ in range(3)] == [1, 2, 3]
    assert [m["version"] for m in store.versions("xor")] == [1, 2, 3]
    assert store.load("xor")[1]["version"] == 3
    assert store.list_models() == [{"name": "xor", "latest": 3, "versions": 3,
                                    "metrics": store.meta("xor")["metrics"]}]


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
    with pytest.raises(ModelNotFound):
        store.load("xor")


def test_delete_whole_model(store, trained):
    for _ in range(2):
        save(store, "xor", trained)
    save(store, "keep", trained)
    store.load("xor")
    store.delete("xor")
    assert [row["name"] for row in store.list_models()] == ["keep"]
    for call in (store.load, store.versions, store.delete, store.meta):
        with pytest.raises(ModelNotFound):
            call("xor")
    assert save(store, "xor", trained)["version"] == 1


def test_version_numbers_are_never_reused_while_the_name_exists(make_store, trained):
    store, other = make_store(), make_store()  # another process's view of the same data
    assert [save(store, "xor", trained)["version"] for _ in range(3)] == [1, 2, 3]
    store.delete("xor", 3)
    store.delete("xor", 2)
    assert save(other, "xor", trained)["version"] == 4
    store.delete("xor", 1)
    store.delete("xor", 4)  # every version gone: the name and its numbering stay
    assert store.list_models() == []
    assert save(store, "xor", trained)["version"] == 5
    store.delete("xor")  # the whole model: the name goes, numbering restarts
    assert save(other, "xor", trained)["version"] == 1


def test_deleting_a_model_left_without_versions_removes_its_name(store, trained):
    save(store, "xor", trained)
    store.delete("xor", 1)
    with pytest.raises(ModelNotFound):
        store.delete("xor")
    assert save(store, "xor", trained)["version"] == 1


def test_figures_are_kept_beside_a_version_for_every_process(make_store, trained):
    store, other = make_store(), make_store()
    save(store, "xor", trained)
    save(store, "xor", trained)
    assert store.figure("xor", 1, "1200x400-ab") is None
    store.put_figure("xor", 1, "1200x400-ab", b"png one")
    store.put_figure("xor", 2, "1200x400-ab", b"png two")
    assert other.figure("xor", 1, "1200x400-ab") == b"png one"
    assert other.figure("xor", 1, "600x400-ab") is None
    other.delete("xor", 1)
    assert store.figure("xor", 1, "1200x400-ab") is None  # deleted with its version
    assert store.figure("xor", 2, "1200x400-ab") == b"png two"
    store.put_figure("xor", 7, "1200x400-ab", b"no such version")
    assert store.figure("xor", 7, "1200x400-ab") is None
    store.delete("xor")
    save(store, "xor", trained)
    assert store.figure("xor", 1, "1200x400-ab") is None


def test_a_version_keeps_only_its_newest_figures(store, trained):
    # every ?width=&height= is drawn and kept: without a bound, reads could fill the disk
    save(store, "xor", trained)
    save(store, "xor", trained)
    keys = [f"{300 + i}x400-ab" for i in range(MAX_FIGURES + 4)]
    for key in keys:
        store.put_figure("xor", 1, key, key.encode())
        time.sleep(0.005)  # a file's mtime is as fine as the kernel's clock tick
    store.put_figure("xor", 2, keys[0], b"the other version's")
    assert [store.figure("xor", 1, key) for key in keys[:4]] == [None] * 4
    assert [store.figure("xor", 1, key) for key in keys[4:]] == [k.encode() for k in keys[4:]]
    assert store.figure("xor", 2, keys[0]) == b"the other version's"
    store.put_figure("xor", 1, keys[4], b"drawn again")  # now the newest: kept longest
    store.put_figure("xor", 1, keys[0], b"back")
    assert store.figure("xor", 1, keys[4]) == b"drawn again"
    assert store.figure("xor", 1, keys[5]) is None and store.figure("xor", 1, keys[0]) == b"back"


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


def test_a_change_through_another_store_is_seen_at_once(make_store, trained):
    store, other = make_store(), make_store()  # two processes' views of one store
    save(store, "xor", trained)
    store.load("xor")
    save(other, "xor", trained)
    assert store.load("xor")[1]["version"] == 2
    other.delete("xor", 2)
    assert store.load("xor")[1]["version"] == 1


def test_a_save_is_fenced_by_its_jobs_lease(store, jobs, trained):
    job_id = jobs.create("xor", {}, 1)["id"]
    lease = jobs.claim("here:1:1", max_running=1)["lease"]
    assert jobs.begin_save(job_id, lease)
    assert save(store, "xor", trained, fence=jobs.fence(job_id, lease))["version"] == 1
    with pytest.raises(LeaseLost):
        save(store, "xor", trained, fence=jobs.fence(job_id, "a-lost-lease"))
    jobs.finish(job_id, lease, "succeeded")
    with pytest.raises(LeaseLost):
        save(store, "xor", trained, fence=jobs.fence(job_id, lease))
    assert [m["version"] for m in store.versions("xor")] == [1]
    assert save(store, "xor", trained)["version"] == 2  # nothing was taken by the refusals


# ----- export and import -----


def test_export_import_round_trip(store, trained):
    saved = save(store, "xor", trained)
    data, filename = store.export("xor", 1)
    assert filename == "xor-v1.npz"
    imported = store.import_npz("copy", data)
    assert imported["name"] == "copy" and imported["version"] == 1
    again = store.import_npz("xor", data)
    assert again["version"] == 2
    for key in ("architecture", "training", "dataset", "metrics", "history", "sha256"):
        assert imported[key] == saved[key]
    assert_same_weights(store.load("copy")[0], trained[0])
    assert np.array_equal(store.points("copy")[0], trained[2])
    assert store.export("copy", 1)[0] != b""


# ----- names -----


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
    assert store.list_models() == []


@pytest.mark.parametrize("name", ["a", "9", "xor-2.v1_b", "a" * 64, "a..b"])
def test_good_names_are_accepted(store, trained, name):
    save(store, name, trained)
    assert store.load(name)[1]["name"] == name
    assert [row["name"] for row in store.list_models()] == [name]


# ----- the cache, threads -----


def test_cached_load_returns_the_same_objects_without_rereading(store, trained):
    save(store, "xor", trained)
    model, meta = store.load("xor")
    assert store.load("xor")[0] is model and store.load("xor", 1)[1] is meta


def test_cache_is_bounded_lru(make_store, trained):
    store = make_store(cache_size=2)
    for name in "abc":
        save(store, name, trained)
    a, b = store.load("a")[0], store.load("b")[0]
    assert store.load("a")[0] is a  # a is now the most recent
    c = store.load("c")[0]  # evicts b
    assert store.load("a")[0] is a and store.load("c")[0] is c
    assert store.load("b")[0] is not b


def test_threads_share_one_store(make_store, trained):
    store, errors = make_store(cache_size=2), []
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


def test_ping_answers_when_the_store_is_usable(store):
    assert store.ping() is None
