"""The file store on real files: its layout, temp files, concurrent and killed writers,
unwritable folders and OS errors."""

import errno
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from service.errors import InvalidName, ModelNotFound, StoreFull, StoreUnavailable
from service.store import MAX_POINTS, FileStore, map_os_error

from .storekit import save, start_savers, visible


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "store")


# ----- layout -----


def test_a_version_is_one_npz_whose_meta_is_a_unicode_json_member(store, trained):
    meta = save(store, "xor", trained)
    with zipfile.ZipFile(store.root / "xor" / "1.npz") as zf:
        raw = np.lib.format.read_array(io.BytesIO(zf.read("meta.npy")), allow_pickle=False)
    assert raw.shape == () and raw.dtype.kind == "U"
    assert json.loads(raw.item()) == meta
    assert store.export("xor", 1)[0] == (store.root / "xor" / "1.npz").read_bytes()


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


def test_a_delete_clears_tombstones_of_killed_deletes_not_of_running_ones(store, trained):
    save(store, "xor", trained)
    killed, running = store.root / ".trash-killed", store.root / ".trash-running"
    for tombstone in (killed, running):
        tombstone.mkdir()
        (tombstone / ".lock").touch()
        (tombstone / "1.npz").write_bytes(b"a version being deleted")
    (store.root / ".trash-unlocked").mkdir()  # no lock: a folder no delete took the lock of
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(running / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        store.delete("xor")
        assert sorted(p.name for p in store.root.iterdir() if p.name.startswith(".trash-")) \
            == [running.name]
    finally:
        holder.kill()
        holder.wait()


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_deleting_leaves_no_folder_and_no_tombstone(store, trained):
    for _ in range(2):
        save(store, "xor", trained)
    save(store, "keep", trained)
    save(store, "one", trained)
    store.delete("xor")
    store.delete("one", 1)  # the name stays: only its hidden high-water mark and lock
    assert visible(store.root) == ["keep", "one"]
    assert sorted(p.name for p in (store.root / "one").iterdir()) == [".highwater", ".lock"]
    assert (store.root / "one" / ".highwater").read_text() == "1"
    with pytest.raises(ModelNotFound):
        store.delete("one")
    assert visible(store.root) == ["keep"]


def test_a_refused_name_writes_nothing_and_a_good_one_is_one_folder(store, trained):
    with pytest.raises(InvalidName):
        save(store, "../x", trained)
    assert not store.root.exists()
    save(store, "a..b", trained)
    assert visible(store.root) == ["a..b"]


# ----- processes -----


def test_concurrent_savers_get_distinct_versions(tmp_path):
    processes, count = 4, 5
    children = start_savers(tmp_path, "race", count, processes, time.time() + 1.0)
    printed = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        printed += [int(v) for v in out.split()]
    assert sorted(printed) == list(range(1, processes * count + 1))
    store = FileStore(tmp_path)
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
    store = FileStore(tmp_path)
    listed = [m["version"] for m in store.versions("kill")]
    assert "corrupt" not in str(store.versions("kill"))
    assert set(printed) <= set(listed)
    assert listed == sorted(set(listed))  # a kill after a number was reserved leaves a gap
    assert len(listed) - len(printed) <= 6  # at most one unreported save per kill
    for v in listed:
        store.load("kill", v)
    assert store.list_models()[0]["latest"] == listed[-1]
    assert all(name.startswith(".tmp-") or name[:-4].isdigit()
               or name in (".highwater", ".lock") for name in os.listdir(tmp_path / "kill"))


# ----- writability and OS errors -----


def test_ping_creates_the_store_and_leaves_only_its_counter(tmp_path):
    store = FileStore(tmp_path / "new" / "store")
    assert store.ping() is None
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
        for call in (store.ping, lambda: save(store, "xor", trained),
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


def test_a_listing_larger_than_the_cache_reads_each_meta_once(tmp_path, trained, monkeypatch):
    store = FileStore(tmp_path, cache_size=1)  # 64 listed metrics kept at first
    for i in range(100):
        save(store, f"m{i:03}", trained)
    reads, real = [], FileStore._checked_meta

    def counted(self, name, version):
        reads.append(name)
        return real(self, name, version)

    monkeypatch.setattr(FileStore, "_checked_meta", counted)
    first = store.list_models()
    second = store.list_models()  # each read pushed out the entry the scan needed next
    assert len(reads) == 100 and first == second and len(first) == 100


def test_a_lease_lost_while_the_file_is_written_leaves_no_version(tmp_path, trained):
    # a worker paused (SIGSTOP) past its lease while writing: the reaper failed its job,
    # then the resumed save linked a version of a job reported failed
    from service.errors import LeaseLost
    from service.jobs import SqliteJobs

    jobs, store = SqliteJobs(tmp_path / "jobs.sqlite3"), FileStore(tmp_path / "store")
    job_id = jobs.create("xor", {}, 1)["id"]
    lease = jobs.claim("here:1:1", max_running=1)["lease"]
    assert jobs.begin_save(job_id, lease)
    fence, holds = jobs.fence(job_id, lease), []

    class Paused:  # the real fence; the job is failed (as the reaper does) after its 1st check
        def hold(self, *args, **kwargs):
            holds.append(True)
            answer = fence.hold(*args, **kwargs)
            if len(holds) == 1:
                jobs.finish(job_id, lease, "failed", error="worker lost")
            return answer

    with pytest.raises(LeaseLost):
        save(store, "xor", trained, fence=Paused())
    assert len(holds) == 2 and jobs.get(job_id)["status"] == "failed"
    with pytest.raises(ModelNotFound):
        store.versions("xor")
    assert not [p for p in (tmp_path / "store" / "xor").iterdir() if p.suffix == ".npz"]
