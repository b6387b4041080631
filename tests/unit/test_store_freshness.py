"""Freshness of the file store's memory: a save or delete made through any store, in any
process, is served by the next load, even on the warm path; changes made by hand within a
second (the rule is in service/store/memory.py)."""

import logging
import multiprocessing
import os
import shutil
import time

import pytest

from service.errors import ModelNotFound, StoreUnavailable
from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig
from service.store import FileStore, memory
from service.store.generation import FILE, RETRY_S, Generation

from .storekit import assert_same_weights, delete_in_child, save, settle, start_savers, warm

FORK = multiprocessing.get_context("fork")


def saved_elsewhere(root, name, trained, count=1):
    """Save count versions of name from another process; return once they are saved."""
    child = FORK.Process(target=_save_in_child, args=(root, name, trained, count))
    child.start()
    child.join(60)
    assert child.exitcode == 0


def _save_in_child(root, name, trained, count):
    store = FileStore(root)
    for _ in range(count):
        save(store, name, trained)


def _bump_in_child(root, count):
    generation = Generation(root)
    for _ in range(count):
        generation.bump()


def test_cache_serves_a_reused_version_number_fresh(tmp_path, trained):
    # Delete and re-save at once: the new file may get the old inode number and has the
    # same size; on kernels with coarse file times only the store's exact mtime differs.
    mine, other = FileStore(tmp_path), FileStore(tmp_path)
    x, y = datasets.xor()
    new_model, new_result = Model.train(Architecture(), x, y, TrainingConfig(epochs=7, seed=3))
    for _ in range(20):
        save(mine, "xor", trained)
        assert mine.load("xor", 1)[1]["metrics"]["epochs"] == trained[1].epochs_run
        other.delete("xor")  # the whole model: only then is a number given again
        assert save(other, "xor", (new_model, new_result, x, y))["version"] == 1
        model, meta = mine.load("xor", 1)
        assert_same_weights(model, new_model)
        assert meta["metrics"]["epochs"] == new_result.epochs_run
        other.delete("xor")


def test_cache_notices_saves_and_deletes_of_another_process(tmp_path, trained):
    store = FileStore(tmp_path)
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


def test_a_save_in_another_process_is_served_by_the_next_load(tmp_path, trained):
    store = FileStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    assert store.load("xor")[1]["version"] == 1
    before = store.memory.generation.read()
    saved_elsewhere(tmp_path, "xor", trained)
    assert store.memory.generation.read() == before + 1
    assert store.load("xor")[1]["version"] == 2


def test_a_delete_in_another_process_is_seen_by_the_next_load(tmp_path, trained):
    store = FileStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    child = FORK.Process(target=lambda: FileStore(tmp_path).delete("xor"))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    with pytest.raises(ModelNotFound):
        store.load("xor")


def test_bumps_from_many_processes_are_all_counted(tmp_path):
    generation = Generation(tmp_path)
    before = generation.read()
    children = [FORK.Process(target=_bump_in_child, args=(tmp_path, 200)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * 4
    assert generation.read() == before + 800


def test_a_file_copied_in_by_hand_is_seen_within_the_recheck(tmp_path, trained, monkeypatch):
    monkeypatch.setattr(memory, "RECHECK_S", 0.5)
    store = FileStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    shutil.copy(store.root / "xor" / "1.npz", store.root / "xor" / ".copy")
    os.rename(store.root / "xor" / ".copy", store.root / "xor" / "2.npz")  # no FileStore: no bump
    copied = time.monotonic()
    assert store.load("xor")[1]["version"] == 1  # the kept stat still holds: no system call
    while store.load("xor")[1]["version"] != 2:
        assert time.monotonic() - copied < 0.5 + 0.5, "the hand-made version was never served"
        time.sleep(0.01)


def test_a_failed_bump_never_fails_the_change_nor_leaves_this_process_stale(
        tmp_path, trained, caplog):
    store = FileStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    os.remove(tmp_path / FILE)
    (tmp_path / FILE).mkdir()  # bumps now fail; this process keeps its mapping
    with caplog.at_level(logging.WARNING, logger="nnserve.store"):
        assert save(store, "xor", trained)["version"] == 2
        assert store.load("xor")[1]["version"] == 2
        settle(store, "xor")
        store.load("xor")
        store.delete("xor", 2)
        assert store.load("xor")[1]["version"] == 1
    assert [m["version"] for m in store.versions("xor")] == [1]
    assert "store generation not bumped" in caplog.text
    with pytest.raises(StoreUnavailable):  # and readiness says so
        store.ping()


def test_a_counter_file_replaced_by_hand_is_mapped_again(tmp_path, trained):
    store = FileStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    os.remove(tmp_path / FILE)
    Generation(tmp_path).make()  # a new file: this process still maps the old one
    saved_elsewhere(tmp_path, "xor", trained)  # bumps the new file
    replaced = time.monotonic()
    while store.load("xor")[1]["version"] != 2:  # seen at the recheck, which maps anew
        assert time.monotonic() - replaced < memory.RECHECK_S + RETRY_S + 1, "never served"
        time.sleep(0.01)
    warm(store, "xor")
    saved_elsewhere(tmp_path, "xor", trained)
    assert store.load("xor")[1]["version"] == 3  # on the very next load again


def test_a_store_made_later_gets_its_counter(tmp_path, trained):
    store = FileStore(tmp_path / "later")
    assert store.memory.generation.read() is None  # no folder yet, and none made by reading
    assert not (tmp_path / "later").exists()
    save(store, "xor", trained)
    time.sleep(1.1)  # the next attempt to map the counter (RETRY_S)
    assert store.memory.generation.read() >= 1


def test_the_counter_is_mapped_read_only_and_shared(tmp_path):
    # A mapping or descriptor open for writing would forbid remounting the store read-only.
    generation = Generation(tmp_path)
    assert generation.read() == 0
    path = os.path.realpath(tmp_path / FILE)
    with open("/proc/self/maps") as maps:
        modes = [line.split()[1] for line in maps if line.rstrip().endswith(path)]
    assert modes == ["r--s"]
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == path:
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = int(next(line for line in info if line.startswith("flags:")).split()[1], 8)
            assert flags & os.O_ACCMODE == os.O_RDONLY
