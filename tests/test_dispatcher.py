"""The clock loop ticks, records each tick, survives a failing tick, and stops when told."""

from __future__ import annotations

import threading

import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from saas import dispatcher
from saas.embedded import free_port


def test_loop_records_ticks_until_stopped(app, redis_conn):
    stop = threading.Event()
    ticked = threading.Event()

    def watched_tick(connection):
        dispatcher.tick(connection)
        ticked.set()

    def run():
        with app.app_context():
            dispatcher.run_forever(redis_conn, stop, watched_tick, interval=0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ticked.wait(timeout=10)
    finally:
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
        dispatcher.record_tick(connection, dispatcher.datetime.now(dispatcher.UTC))

    dispatcher.run_forever(unreachable, stop, failing_tick, interval=0.01)
    assert len(attempts) == 2  # the first failure was logged and the loop ticked again
