"""The file store under deletes racing saves, reads and alias moves, each side a real process:
a delete never answers 503, a 404 never removed what was saved, an alias move is applied
wholly before or after a version's delete, and a read of the latest is never a 404 while
a version stays."""

import multiprocessing
import time
from collections import Counter

from service.errors import ModelNotFound, StoreUnavailable
from service.store import FileStore

from .storekit import save

FORK = multiprocessing.get_context("fork")


def _answer(work):
    """Return how work() ended: "ok", "404", "503: ..." (or what it returned, a str)."""
    try:
        result = work()
        return result if isinstance(result, str) else "ok"
    except ModelNotFound:
        return "404"
    except StoreUnavailable as exc:
        return f"503: {exc}"


def race(root, rounds, sides, before, after):
    """Run rounds of sides (work(store, round) each, in a process of its own) started
    together; before(store, round) sets a round up and after(store, round) reads what it
    left, in this process. Return [(what after read, (each side's answer))] per round."""
    start, done, out = FORK.Barrier(len(sides) + 1), FORK.Barrier(len(sides) + 1), FORK.Queue()

    def side(index, work):
        store, answers = FileStore(root), []
        for r in range(rounds):
            start.wait(60)
            answers.append(_answer(lambda: work(store, r)))  # noqa: B023 (called at once)
            done.wait(60)
        out.put((index, answers))

    children = [FORK.Process(target=side, args=(i, work)) for i, work in enumerate(sides)]
    for child in children:
        child.start()
    store, seen = FileStore(root), []
    for r in range(rounds):
        before(store, r)
        start.wait(60)
        done.wait(60)
        seen.append(after(store, r))
    answers = dict(out.get(timeout=60) for _ in children)
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    return list(zip(seen, zip(*(answers[i] for i in range(len(sides))), strict=True),
                    strict=True))


def _spin(r, step=1e-4, spread=40):
    """Wait r % spread steps: over the rounds, one side starts from before the other to after."""
    until = time.perf_counter() + (r % spread) * step
    while time.perf_counter() < until:
        pass


def _latest(store, name):
    try:
        return store.meta(name)["version"]
    except ModelNotFound:
        return None


def test_a_model_delete_that_answers_404_removed_no_version_a_save_returned(tmp_path, trained):
    store = FileStore(tmp_path)
    store.delete("m", save(store, "m", trained)["version"])  # a name left without a version

    def tidy(store, r):  # back to the name without a version
        if _latest(store, "m") is not None:
            for meta in store.versions("m"):
                store.delete("m", meta["version"])

    rounds = race(tmp_path, 300, [lambda store, r: save(store, "m", trained),
                                  lambda store, r: (_spin(r), store.delete("m"))],
                  tidy, lambda store, r: _latest(store, "m"))
    # a 404: the name had no version when the delete took it, so the save came after and
    # its version is there; a 204 took the saved version with it, or came before the save
    assert all(kept is not None for kept, (_, deleted) in rounds if deleted == "404"), rounds
    assert {answers for _, answers in rounds} <= {("ok", "ok"), ("ok", "404")}, rounds


def test_an_alias_move_racing_a_version_delete_is_wholly_before_or_after_it(tmp_path, trained):
    store = FileStore(tmp_path)
    keep = save(store, "a", trained)["version"]
    assert keep == 1

    def versions(r):  # (the one deleted, the one moved onto), numbered alike in every process
        old, new = 2 + 2 * r, 3 + 2 * r
        return (old, new) if r % 2 else (new, new)

    def before(store, r):  # "prod" moves from a kept version onto the one deleted (even
        # rounds), or off the one deleted onto a new one (odd rounds)
        assert [save(store, "a", trained)["version"] for _ in range(2)] == [2 + 2 * r, 3 + 2 * r]
        store.set_alias("a", "prod", keep if r % 2 == 0 else 2 + 2 * r)

    def move(store, r):
        store.set_alias("a", "prod", versions(r)[1])

    def drop(store, r):
        _spin(r % 20, 2e-4)
        store.delete("a", versions(r)[0])

    rounds = race(tmp_path, 120, [move, drop], before, lambda store, r: store.aliases("a"))
    for r, (aliases, (moved, dropped)) in enumerate(rounds):
        assert dropped == "ok", rounds[r]
        if r % 2:  # before the delete or after it, the move lands
            assert moved == "ok" and aliases == {"prod": versions(r)[1]}, rounds[r]
        elif moved == "ok":  # before the delete, which took the alias with its version
            assert aliases == {}, rounds[r]
        else:  # refused after the delete: nothing changed
            assert moved == "404" and aliases == {"prod": keep}, rounds[r]


def _until(seconds, work, good):
    """Return a side that does work(store) for seconds: "ok" if it only answered good."""
    def loop(store, r):
        until, seen = time.time() + seconds, Counter()
        while time.time() < until:
            seen[work(store)] += 1
        return "ok" if set(seen) <= good else repr(dict(seen))
    return loop


def test_version_deletes_racing_saves_and_model_deletes_are_never_503(tmp_path, trained):
    def delete_latest(store):  # a 404 is right: deleted meanwhile, or no version to list
        metas = store.versions("t")
        return "empty list of versions" if not metas else store.delete("t", metas[-1]["version"])

    def delete_model(store):
        time.sleep(0.001)
        store.delete("t")

    sides = [_until(4, lambda store: _answer(lambda: save(store, "t", trained)), {"ok"}),
             _until(4, lambda store: _answer(lambda: delete_model(store)), {"ok", "404"}),
             _until(4, lambda store: _answer(lambda: delete_latest(store)), {"ok", "404"})]
    rounds = race(tmp_path, 1, sides, lambda store, r: None, lambda store, r: None)
    assert rounds[0][1] == ("ok", "ok", "ok"), rounds


def test_reads_of_the_latest_never_miss_while_a_version_stays(tmp_path, trained):
    save(FileStore(tmp_path), "r", trained)  # version 1 stays throughout

    def read(store):
        return " ".join(_answer(lambda: f(store)) for f in (  # noqa: B023 (called at once)
            lambda s: s.load("r"), lambda s: s.meta("r"), lambda s: s.points("r")))

    def churn(store):
        return _answer(lambda: store.delete("r", save(store, "r", trained)["version"]))

    sides = [_until(3, read, {"ok ok ok"}), _until(3, churn, {"ok"})]
    rounds = race(tmp_path, 1, sides, lambda store, r: None, lambda store, r: None)
    assert rounds[0][1] == ("ok", "ok"), rounds


def test_a_number_reserved_in_a_deleted_folder_is_never_given_again_in_the_new_one(tmp_path,
                                                                                  trained):
    from service.store.disk import open_folder, place, reserve_version

    store, directory = FileStore(tmp_path), tmp_path / "m"
    assert [save(store, "m", trained)["version"] for _ in range(3)] == [1, 2, 3]
    model, _, x, y = trained
    arrays, meta = model.to_arrays()
    with open_folder(directory) as folder:  # a save's steps, a delete and a save between
        version = reserve_version(directory, folder)
        store.delete("m")
        assert save(store, "m", trained)["version"] == 1  # the name made anew
        assert place(directory, folder, arrays, {**meta, "version": version}, x, y)
    assert version == 4 and (directory / "4.npz").exists()  # linked into the new folder
    store.delete("m", 4)
    assert save(store, "m", trained)["version"] == 5  # 4 was given once in this folder


def test_a_figure_kept_while_its_version_is_deleted_is_not_left_behind(tmp_path, trained):
    png = b"\x89PNG\r\n\x1a\n" + bytes(200_000)

    def before(store, r):
        assert save(store, "f", trained)["version"] == r + 1

    rounds = race(tmp_path, 150, [
        lambda store, r: store.put_figure("f", r + 1, "500x400-x", png),
        lambda store, r: (_spin(r % 20, 5e-5), store.delete("f", r + 1))],
        before, lambda store, r: sorted(p.name for p in (tmp_path / "f").glob(".fig-*")))
    assert all(left == [] for left, _ in rounds), [r for r in rounds if r[0]]
    assert {answers for _, answers in rounds} == {("ok", "ok")}


def test_deletes_of_other_models_at_once_each_answer_ok(tmp_path, trained):
    # each delete cleared every tombstone, also one another delete was still counting, which
    # then answered 404 for a model it had removed (about 1 in 100 over HTTP). This catches
    # it in some runs only; test_store_files' tombstone test holds the rule deterministically
    sides, rounds = 4, 200
    names = [[f"m{side}-{r}" for r in range(rounds)] for side in range(sides)]
    store = FileStore(tmp_path)
    for side_names in names:
        for name in side_names:
            save(store, name, trained)

    def deleter(i):
        return lambda store, r: store.delete(names[i][r])

    answers = race(tmp_path, rounds, [deleter(i) for i in range(sides)],
                   lambda store, r: None, lambda store, r: None)
    assert Counter(a for _, round_answers in answers for a in round_answers) == {
        "ok": sides * rounds}
    assert store.list_models() == [] and not list(tmp_path.glob(".trash-*"))
