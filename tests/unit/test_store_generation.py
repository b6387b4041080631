"""The store's generation: a warm load makes no system call, yet sees every save and delete
made through any ModelStore, in any process, on the very next load."""

import logging
import multiprocessing
import os
import shutil
import time

import pytest

import service.store
from service.errors import ModelNotFound, StoreUnavailable
from service.store import RECHECK_S, ModelStore
from service.store.generation import FILE, RETRY_S, Generation

from .test_store import save, trained  # noqa: F401 - trained is a fixture

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def stats(monkeypatch):
    """Count the os.stat calls made from now on."""
    calls = []
    real = os.stat

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "stat", counted)
    return calls


def settle(store, name):
    """Age the model's folder past SETTLED_NS, as if it had been left alone a while."""
    folder = store.root / name
    past = time.time_ns() - 10 * service.store.SETTLED_NS
    os.utime(folder, ns=(past, past))


def warm(store, name):
    """Load name until its folder's stat is kept and the counter mapped (the warm path)."""
    settle(store, name)
    for _ in range(3):
        store.load(name)
    assert store.generation.peek() is not None and name in store._stats


def saved_elsewhere(root, name, trained, count=1):  # noqa: F811 - trained is the fixture's value
    """Save count versions of name from another process; return once they are saved."""
    child = FORK.Process(target=_save_in_child, args=(root, name, trained, count))
    child.start()
    child.join(60)
    assert child.exitcode == 0


def _save_in_child(root, name, trained, count):  # noqa: F811
    store = ModelStore(root)
    for _ in range(count):
        save(store, name, trained)


def _bump_in_child(root, count):
    generation = Generation(root)
    for _ in range(count):
        generation.bump()


def test_a_warm_load_makes_no_system_call(tmp_path, trained, stats):  # noqa: F811
    save(ModelStore(tmp_path), "xor", trained)
    store = ModelStore(tmp_path)
    settle(store, "xor")
    store.load("xor")
    assert store.generation.peek() is None  # one load maps nothing (the CLI, a cold load)
    store.load("xor")  # the second maps the counter and stats once more
    assert store.generation.peek() is not None
    stats.clear()
    for _ in range(3):
        assert store.load("xor")[1]["version"] == 1
    assert stats == []


def test_a_save_in_another_process_is_served_by_the_next_load(tmp_path, trained):  # noqa: F811
    store = ModelStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    assert store.load("xor")[1]["version"] == 1
    before = store.generation.read()
    saved_elsewhere(tmp_path, "xor", trained)
    assert store.generation.read() == before + 1
    assert store.load("xor")[1]["version"] == 2


def test_a_delete_in_another_process_is_seen_by_the_next_load(tmp_path, trained):  # noqa: F811
    store = ModelStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    child = FORK.Process(target=lambda: ModelStore(tmp_path).delete("xor"))
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


def test_a_file_copied_in_by_hand_is_seen_within_the_recheck(tmp_path, trained, monkeypatch):  # noqa: F811
    monkeypatch.setattr(service.store, "RECHECK_S", 0.5)
    store = ModelStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    shutil.copy(store.root / "xor" / "1.npz", store.root / "xor" / ".copy")
    os.rename(store.root / "xor" / ".copy", store.root / "xor" / "2.npz")  # no ModelStore: no bump
    copied = time.monotonic()
    assert store.load("xor")[1]["version"] == 1  # the kept stat still holds: no system call
    while store.load("xor")[1]["version"] != 2:
        assert time.monotonic() - copied < 0.5 + 0.5, "the hand-made version was never served"
        time.sleep(0.01)


def test_without_the_counter_every_load_stats_and_sees_every_change(tmp_path, trained, stats):  # noqa: F811
    (tmp_path / FILE).mkdir()  # the counter cannot be made
    store = ModelStore(tmp_path)
    assert store.generation.read() is None
    save(store, "xor", trained)
    settle(store, "xor")
    store.load("xor")
    stats.clear()
    store.load("xor")
    assert len(stats) == 1
    shutil.copy(store.root / "xor" / "1.npz", store.root / "xor" / "2.npz")
    assert store.load("xor")[1]["version"] == 2


def test_a_failed_bump_never_fails_the_change_nor_leaves_this_process_stale(
        tmp_path, trained, caplog):  # noqa: F811
    store = ModelStore(tmp_path)
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
        store.check_writable()


def test_a_counter_file_replaced_by_hand_is_mapped_again(tmp_path, trained):  # noqa: F811
    store = ModelStore(tmp_path)
    save(store, "xor", trained)
    warm(store, "xor")
    os.remove(tmp_path / FILE)
    Generation(tmp_path).make()  # a new file: this process still maps the old one
    saved_elsewhere(tmp_path, "xor", trained)  # bumps the new file
    replaced = time.monotonic()
    while store.load("xor")[1]["version"] != 2:  # seen at the recheck, which maps anew
        assert time.monotonic() - replaced < RECHECK_S + RETRY_S + 1, "never served"
        time.sleep(0.01)
    warm(store, "xor")
    saved_elsewhere(tmp_path, "xor", trained)
    assert store.load("xor")[1]["version"] == 3  # on the very next load again


def test_a_store_made_later_gets_its_counter(tmp_path, trained):  # noqa: F811
    store = ModelStore(tmp_path / "later")
    assert store.generation.read() is None  # no folder yet, and none made by reading
    assert not (tmp_path / "later").exists()
    save(store, "xor", trained)
    time.sleep(1.1)  # the next attempt to map the counter (RETRY_S)
    assert store.generation.read() >= 1


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
