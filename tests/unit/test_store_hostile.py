"""Hostile and damaged model files: refused on upload by every store, and refused when
found in the file store; never executed."""

import functools
import io
import json
import random
import re
import time
import zipfile

import numpy as np
import pytest

from service.errors import CorruptModel, InvalidModelFile, ModelNotFound
from service.nn.history import MAX_ROWS, thin_history
from service.store import FileStore, weights_sha256

from .storekit import save


@pytest.fixture
def file_store(tmp_path):
    return FileStore(tmp_path / "store")


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
    "layers as a string": (change(lambda _, meta: meta["architecture"].update(layers="2441")),
                           "whole numbers"),
    "a fractional layer": (change(lambda _, meta: meta["architecture"].update(
        layers=[2, 4.7, 4, 1])), "whole numbers"),
    "mistyped training": (change(lambda _, meta: meta["training"].update(epochs="x")),
                          "training.epochs must be int"),
    "a list for a rate": (change(lambda _, meta: meta["training"].update(learning_rate=[1])),
                          "training.learning_rate must be float"),
    # small weights under layers that would need 7 TiB: refused before anything is allocated
    "huge architecture": (change(lambda _, meta: meta["architecture"].update(
        layers=[2, 10**6, 10**6, 1])), "expected (2, 1000000)"),
    "points mismatch": (change(lambda m, _: m.update(train_y=m["train_y"][:-1])), "labels"),
    "points count": (set_meta(points_stored=5), "meta says 5"),
    "unexpected member": (change(lambda m, _: m.update(evil=np.zeros(1))), "unexpected"),
    "lying header": (change(lying_header), "declares more data"),
    "zip bomb": (lambda data, _: zip_bomb(data), "over the limit"),
    # 13 MB of JSON is 52 MB as a unicode array: it cost a worker 400 MB to parse at 64 MB
    "huge meta": (set_meta(note="x" * 13 * 2**20), "meta unpacks to"),
}


def damaged(case, valid_npz, tmp_path):
    """Return the damaged bytes of a DAMAGES case and the path its pickle trap would create."""
    trap = tmp_path / "pickle-was-executed"
    return DAMAGES[case][0](valid_npz, trap), trap


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_stored_file_is_refused_and_others_keep_working(file_store, trained, valid_npz,
                                                               tmp_path, case):
    store = file_store
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


def test_meta_reads_only_the_meta_member(file_store, trained, valid_npz):
    store = file_store
    save(store, "xor", trained)
    nan = DAMAGES["nan weights"][0](valid_npz, None)
    (store.root / "xor" / "2.npz").write_bytes(nan)
    assert store.meta("xor", 2)["version"] == 2
    with pytest.raises(CorruptModel, match="non-finite"):
        store.load("xor", 2)


def test_import_drops_unknown_meta_keys(store, valid_npz):
    data = forged(valid_npz, lambda _, meta: meta.update(extra="x" * 100))
    assert "extra" not in store.import_npz("up", data)



def test_an_uploaded_history_is_thinned_as_a_trained_one(store, valid_npz):
    """200,000 rows were kept whole: every read of the version then returned 3.3 MB."""
    rows = 200_000
    rng = np.random.default_rng(0)  # floats of full precision: the longest JSON of a row
    history = {"epoch": list(range(rows)), "loss": rng.random(rows).tolist(),
               "accuracy": (rng.integers(0, 301, rows) / 300).tolist()}
    data = forged(valid_npz, lambda _, meta: meta.update(history=history))

    meta = store.import_npz("up", data)

    assert meta["history"] == thin_history(history)
    assert len(meta["history"]["epoch"]) == MAX_ROWS + 1
    assert meta["history"]["epoch"][0] == 0 and meta["history"]["epoch"][-1] == rows - 1
    assert store.meta("up", meta["version"])["history"] == meta["history"]
    assert len(json.dumps(store.meta("up"))) < 100_000


def test_a_meta_of_millions_of_values_is_refused_before_it_is_parsed(store, valid_npz):
    # a probe's 92 KB upload, 42 MB inflated: parsing its 5.5 million zeros cost 2 s and
    # 250 MB of a worker before the history's bound refused it (24 at once: 1.1 GB a worker)
    history = {f"c{i}": [0] * 1000 for i in range(3000)}  # 36 MB inflated, as json.dumps writes
    data = forged(valid_npz, lambda _, meta: meta["history"].update(history))

    with pytest.raises(InvalidModelFile, match="meta holds about 30..... values, over the "
                                               "limit of 2000000") as caught:
        store.import_npz("up", data)

    assert caught.value.status == 422
    with pytest.raises(ModelNotFound):
        store.meta("up")


def test_a_meta_integer_past_the_digit_bound_is_named_without_the_interpreters_advice(
        store, valid_npz):
    def huge(members, meta):
        members["meta"] = np.array(json.dumps(meta).replace('"format": 1',
                                                            '"format": 1, "n": ' + "7" * 5000))

    with pytest.raises(InvalidModelFile) as caught:
        store.import_npz("up", forged(valid_npz, huge))

    assert "an integer of over 4300 digits" in caught.value.detail
    assert "set_int_max_str_digits" not in caught.value.detail


@pytest.mark.parametrize(("change", "loc", "says"), [
    (lambda meta: meta["metrics"].update({f"m{i}": 0.5 for i in range(2000)}), ["metrics"],
     "meta field 'metrics' is 2"),
    (lambda meta: meta["dataset"].update(points=[[0.5, 0.5]] * 5000), ["dataset"],
     "meta field 'dataset' is"),
    (lambda meta: meta["history"].update(loss="x" * 100), ["history", "loss"],
     "meta history column 'loss' is not a list"),
    (lambda meta: meta["history"].update(x=json.loads("[" * 900 + "]" * 900)), ["history", "x"],
     "meta history column 'x' nests deeper than 4 levels"),  # was kept and served so
    (lambda meta: meta["history"].update({f"c{i}": [0.123456789] * 1000 for i in range(20)}),
     ["history"], "meta field 'history' is"),
])
def test_uploaded_meta_fields_over_their_bounds_are_refused_naming_them(store, valid_npz, change,
                                                                        loc, says):
    data = forged(valid_npz, lambda _, meta: change(meta))

    with pytest.raises(InvalidModelFile, match=re.escape(says)) as caught:
        store.import_npz("up", data)

    assert caught.value.status == 422
    assert caught.value.extra["errors"][0]["loc"] == ["body", "meta", *loc]
    with pytest.raises(ModelNotFound):
        store.versions("up")


def test_a_folder_named_like_a_version_is_a_corrupt_version(file_store, trained):
    """A folder `3.npz` is listed, read and deleted as a corrupt version 3, everywhere alike
    (it was left out of the list while a read of it was a 503), and takes its number."""
    store = file_store
    save(store, "m", trained)
    save(store, "m", trained)
    (store.root / "m" / "3.npz").mkdir()
    (store.root / "m" / "3.npz" / "inside").write_bytes(b"x")
    for read in (store.meta, store.load, store.points, store.export):
        with pytest.raises(CorruptModel, match="model 'm' version 3 is corrupt: not a file"):
            read("m", 3)
    with pytest.raises(CorruptModel):
        store.load("m")  # the latest
    assert [v.get("corrupt") for v in store.versions("m")] == [None, None, "not a file"]
    assert store.list_models() == [{"name": "m", "latest": 3, "versions": 3,
                                    "corrupt": "not a file"}]
    assert save(store, "m", trained)["version"] == 4
    store.delete("m", 3)
    assert [v["version"] for v in store.versions("m")] == [1, 2, 4]
    assert not (store.root / "m" / "3.npz").exists()
