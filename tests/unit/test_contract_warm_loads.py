"""The performance contract of a warm load (benchmarks/RESULTS.md, "Store": a cache hit
makes no file-system call) and of a listing (each file parsed once until it changes).

These tests count system calls and reach into the store's modules; the behaviour they
guard is tested through the public interface in test_store_freshness.py."""

import errno
import os
import shutil
import time

import pytest

import service.store.files as files_module
from service.errors import StoreUnavailable
from service.store import FileStore
from service.store.generation import FILE

from .storekit import counted_stats, save, settle


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "store")


def test_a_warm_load_makes_no_system_call(tmp_path, trained):
    save(FileStore(tmp_path), "xor", trained)
    store = FileStore(tmp_path)
    settle(store, "xor")
    store.load("xor")
    assert store.memory.generation.peek() is None  # one load maps nothing (the CLI, a cold load)
    store.load("xor")  # the second maps the counter and stats once more
    assert store.memory.generation.peek() is not None
    with counted_stats() as stats:
        for _ in range(3):
            assert store.load("xor")[1]["version"] == 1
    assert stats == []


def test_without_the_counter_every_load_stats_and_sees_every_change(tmp_path, trained):
    (tmp_path / FILE).mkdir()  # the counter cannot be made
    store = FileStore(tmp_path)
    assert store.memory.generation.read() is None
    save(store, "xor", trained)
    settle(store, "xor")
    store.load("xor")
    with counted_stats() as stats:
        store.load("xor")
    assert len(stats) == 1
    shutil.copy(store.root / "xor" / "1.npz", store.root / "xor" / "2.npz")
    assert store.load("xor")[1]["version"] == 2


def test_a_repeated_load_costs_one_stat_of_the_folder(store, trained, monkeypatch):
    save(store, "xor", trained)
    os.utime(store.root / "xor", ns=(0, time.time_ns() - 10**9))  # settled a second ago
    first, _ = store.load("xor")
    monkeypatch.setattr(files_module.os, "scandir", None)  # a listing would now fail
    with counted_stats() as calls:
        again, meta = store.load("xor")
    assert again is first and meta["version"] == 1
    assert calls == [os.fspath(store.root / "xor")]


def test_a_folder_that_cannot_be_read_makes_the_store_unavailable(store, trained, monkeypatch):
    save(store, "xor", trained)

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr(files_module.os, "stat", refused)
    with pytest.raises(StoreUnavailable, match="read model 'xor'") as caught:
        store.load("xor")
    assert str(store.root) not in caught.value.detail


def test_listing_reads_each_file_once_until_it_changes(store, trained, monkeypatch):
    reads = []
    real = files_module.read_meta_only
    monkeypatch.setattr(files_module, "read_meta_only",
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
