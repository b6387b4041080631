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
    for age, count in enumerate(counts, start=1):
        shares.record(age, count)
    return shares, clock


def test_a_worker_over_its_even_share_is_crowded_and_the_fewest_accept():
    shares, _ = _shares(7, 4, 4, 1)  # 16 connections, 4 each
    assert [shares.crowded(age, n) for age, n in enumerate((7, 4, 4, 1), 1)] == [
        True, False, False, False]
    assert [shares.least(age, n) for age, n in enumerate((7, 4, 4, 1), 1)] == [
        False, False, False, True]


def test_an_even_spread_closes_nothing_and_every_worker_accepts():
    shares, _ = _shares(4, 4, 4, 4)
    assert not any(shares.crowded(age, 4) for age in range(1, 5))
    assert all(shares.least(age, 4) for age in range(1, 5))
    assert not shares.crowded(1, 5) and shares.crowded(1, 6)  # 17: a share of 5, rounded up


def test_a_lone_worker_is_never_crowded():
    shares, _ = _shares(50)
    assert not shares.crowded(1, 50) and shares.least(1, 50)


def test_what_a_worker_holds_now_is_recorded_by_the_question():
    shares, _ = _shares(1, 4)
    assert shares.least(2, 0)  # it closed its connections since it last wrote
    assert not shares.least(1, 1)


def test_a_cleared_or_silent_slot_counts_for_nothing():
    shares, clock = _shares(9, 1)
    assert shares.crowded(1, 9)
    shares.clear(2)
    assert not shares.crowded(1, 9) and shares.least(1, 9)
    shares.record(2, 0)
    assert not shares.least(1, 9)
    clock.now += FRESH_S + 0.1  # worker 2 stopped turning its loop
    assert shares.least(1, 9)
    shares.record(2, 0)  # and turns it again
    assert not shares.least(1, 9)


def test_ages_past_the_slots_wrap_around():
    shares, _ = _shares()
    shares.record(3, 2)
    shares.record(3 + 8, 5)  # the same slot: the later worker
    assert shares.least(3, 5) and not shares.crowded(3, 5)


def _record(shares, age, count):
    shares.record(age, count)


def test_a_forked_worker_writes_where_the_master_and_the_others_read():
    shares = ConnectionShares(slots=8)
    ctx = multiprocessing.get_context("fork")
    for age, count in ((1, 6), (2, 2)):
        child = ctx.Process(target=_record, args=(shares, age, count))
        child.start()
        child.join(10)
        assert child.exitcode == 0
    assert shares.crowded(3, 6) and not shares.least(3, 3)  # 6, 2 and 6: a share of 5
    assert shares.least(3, 2)
