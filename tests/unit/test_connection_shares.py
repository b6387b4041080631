"""ConnectionShares: each worker's connections, shared by forks, and the rules read from them."""

import multiprocessing

from service.connection_shares import FRESH_S, ConnectionShares


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _shares(*counts):
    clock = Clock()
    shares = ConnectionShares(slots=8, clock=clock)
    for slot, count in enumerate(counts, start=1):
        shares.record(slot, count)
    return shares, clock


def test_a_worker_over_its_even_share_is_crowded():
    shares, _ = _shares(7, 4, 4, 1)  # 16 connections, 4 each
    assert [shares.crowded(slot, n) for slot, n in enumerate((7, 4, 4, 1), 1)] == [
        True, False, False, False]


def test_an_even_spread_closes_nothing():
    shares, _ = _shares(4, 4, 4, 4)
    assert not any(shares.crowded(slot, 4) for slot in range(1, 5))
    assert not shares.crowded(1, 5) and shares.crowded(1, 6)  # 17: a share of 5, rounded up


def test_a_lone_worker_is_never_crowded():
    shares, _ = _shares(50)
    assert not shares.crowded(1, 50)


def test_what_a_worker_holds_now_is_recorded_by_the_question():
    shares, _ = _shares(1, 6)
    assert shares.crowded(2, 6)
    assert not shares.crowded(2, 1)  # it closed connections since it last wrote
    assert not shares.crowded(1, 1)


def test_a_cleared_or_silent_slot_counts_for_nothing():
    shares, clock = _shares(9, 1)
    assert shares.crowded(1, 9)
    shares.clear(2)
    assert not shares.crowded(1, 9)
    shares.record(2, 0)
    assert shares.crowded(1, 9)
    clock.now += FRESH_S + 0.1  # worker 2 stopped turning its loop
    assert not shares.crowded(1, 9)
    shares.record(2, 0)  # and turns it again
    assert shares.crowded(1, 9)


def test_a_free_slot_is_one_no_live_worker_holds():
    shares = ConnectionShares(slots=4)
    assert shares.free(set()) == 0
    assert shares.free({0, 1, 3}) == 2
    assert shares.free({0, 1, 2, 3}) is None  # the worker then serves without spreading


def _record(shares, slot, count):
    shares.record(slot, count)


def test_a_forked_worker_writes_where_the_master_and_the_others_read():
    shares = ConnectionShares(slots=8)
    ctx = multiprocessing.get_context("fork")
    for slot, count in ((1, 6), (2, 2)):
        child = ctx.Process(target=_record, args=(shares, slot, count))
        child.start()
        child.join(10)
        assert child.exitcode == 0
    assert shares.crowded(3, 6)  # 6, 2 and 6: a share of 5
    assert not shares.crowded(3, 3)  # 6, 2 and 3: a share of 4


def test_the_fewest_accept_and_so_does_a_worker_under_its_share():
    shares, _ = _shares(3, 4, 4, 5)  # a share of 4
    assert [shares.accepts(slot, n) for slot, n in enumerate((3, 4, 4, 5), 1)] == [
        True, False, False, False]
    shares, _ = _shares(0, 0, 0, 0)
    assert all(shares.accepts(slot, 0) for slot in range(1, 5))
    shares, _ = _shares(10, 13, 14, 15)  # a burst under way: a share of 13
    assert [shares.accepts(slot, n) for slot, n in enumerate((10, 13, 14, 15), 1)] == [
        True, False, False, False]
    shares, _ = _shares(10, 12, 14, 16)  # a share of 13: the 12 need not wait for the 10
    assert shares.accepts(2, 12) and not shares.accepts(3, 14)
