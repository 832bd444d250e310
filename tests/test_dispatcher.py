"""The clock loop ticks, records each tick, survives a failing tick, and stops when told."""

from __future__ import annotations

import threading

import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from saas import dispatcher
from saas.embedded import free_port


def test_loop_records_ticks_until_stopped(redis_conn):
    stop = threading.Event()
    ticked = threading.Event()
    original = dispatcher.tick

    def watched_tick(connection):
        original(connection)
        ticked.set()

    thread = threading.Thread(target=dispatcher.run_forever, args=(redis_conn, stop, watched_tick))
    thread.start()
    assert ticked.wait(timeout=10)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert dispatcher.last_tick(redis_conn) is not None


def test_loop_keeps_going_when_redis_is_unreachable():
    unreachable = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    stop = threading.Event()
    attempts = []

    def failing_tick(connection):
        attempts.append(1)
        if len(attempts) >= 2:
            stop.set()
        dispatcher.tick(connection)

    dispatcher.run_forever(unreachable, stop, failing_tick, interval=0.01)
    assert len(attempts) == 2  # the first failure was logged and the loop ticked again
