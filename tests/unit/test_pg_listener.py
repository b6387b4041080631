"""The process's LISTEN connection: notifications reach each channel's subscribers, a
(re)connection tells them to recheck, polls run every tick, and a killed connection is
made again by itself."""

import queue
import time

import psycopg
import pytest

from service.pg.listener import APPLICATION_NAME, Listener


@pytest.fixture
def listener(pg_database):
    listener = Listener(pg_database.url, tick_s=0.1)
    yield listener
    listener.stop()


def notify(url, channel, payload):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def next_of(q, timeout=2.0):
    return q.get(timeout=timeout)


def test_notifications_reach_their_channel_and_listening_starts_with_a_recheck(
        pg_database, listener):
    models, jobs = queue.Queue(), queue.Queue()
    listener.subscribe("models", models.put)
    listener.subscribe("jobs", jobs.put)
    assert listener.wait_listening("models", 5) and listener.wait_listening("jobs", 5)
    assert next_of(models) is None and next_of(jobs) is None  # recheck: maybe missed some
    notify(pg_database.url, "models", "xor")
    assert next_of(models) == "xor"
    notify(pg_database.url, "jobs", "")
    assert next_of(jobs) == ""
    assert models.empty() and not listener.is_listening("other")


def test_a_killed_connection_is_made_again_and_its_subscribers_recheck(pg_database, listener):
    seen, polls = queue.Queue(), queue.Queue()
    listener.subscribe("models", seen.put, poll=lambda conn: polls.put(
        conn.execute("SELECT 1").fetchone()[0]))
    assert next_of(seen) is None
    assert next_of(polls) == 1 and next_of(polls) == 1  # every tick
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                              " WHERE application_name LIKE %s AND datname = current_database()",
                              (f"{APPLICATION_NAME} %",)).fetchone()[0]
    assert killed >= 1  # ours (a listener of an earlier test may still be closing)
    started = time.monotonic()
    assert next_of(seen) is None  # listening again: whatever was sent meanwhile, recheck
    assert time.monotonic() - started < 1.0
    notify(pg_database.url, "models", "after")
    assert next_of(seen) == "after"


def test_a_failing_subscriber_does_not_stop_the_others(pg_database, listener):
    seen = queue.Queue()
    listener.subscribe("models", lambda payload: 1 / 0)
    listener.subscribe("models", seen.put, poll=lambda conn: 1 / 0)
    assert next_of(seen) is None
    notify(pg_database.url, "models", "xor")
    assert next_of(seen) == "xor"


def test_a_bad_channel_name_is_refused(listener):
    with pytest.raises(ValueError):
        listener.subscribe("no; DROP TABLE jobs", print)
