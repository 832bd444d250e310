"""The `clock` process: a loop that ticks about once a second.

Each tick records itself in Redis (for /healthz) and runs the dispatch step.
Several dispatchers may run at once: all shared state lives in PostgreSQL and
Redis, never in this process.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis

log = logging.getLogger(__name__)

LAST_TICK_KEY = "dispatcher:last_tick"
TICK_SECONDS = 1.0
REMINDERS_KEY = "dispatcher:approval_reminders"
REMINDERS_SECONDS = 600
HOUSEKEEPING_KEY = "dispatcher:housekeeping"
HOUSEKEEPING_SECONDS = 3600


def record_tick(connection: redis.Redis, at: datetime) -> None:
    connection.set(LAST_TICK_KEY, at.isoformat(), ex=3600)


def last_tick(connection: redis.Redis) -> datetime | None:
    value = connection.get(LAST_TICK_KEY)
    return datetime.fromisoformat(value.decode()) if value else None


def tick(connection: redis.Redis) -> None:
    """One pass: note that we are alive, then claim and hand out what is due (needs an app context)."""
    from saas.approvals.reminders import send_reminders
    from saas.posts.recurrence import advance_all
    from saas.publishing.dispatch import dispatch_due_targets
    from saas.webhooks.delivery import dispatch_due_deliveries

    now = datetime.now(UTC)
    record_tick(connection, now)
    advance_all(now)  # the next occurrence of a repeating post, once the current one is due
    dispatch_due_targets(connection)
    dispatch_due_deliveries(connection)  # webhook events whose (next) attempt is due
    # Approval reminders every few minutes from whichever clock gets there first (each is sent only once).
    if connection.set(REMINDERS_KEY, now.isoformat(), nx=True, ex=REMINDERS_SECONDS):
        send_reminders(now)
    if connection.set(HOUSEKEEPING_KEY, now.isoformat(), nx=True, ex=HOUSEKEEPING_SECONDS):
        housekeeping(now)  # hourly, from whichever clock gets there first


def housekeeping(now: datetime) -> None:
    """Keep the logs and remembered keys bounded: webhook deliveries, API idempotency keys, ended sessions."""
    from saas import db
    from saas.api import idempotency
    from saas.identity import sessions
    from saas.webhooks.delivery import prune_old_events

    prune_old_events()
    idempotency.prune(now)
    with db.new_session() as session:  # log-in sessions are per user, not per workspace
        sessions.prune(session)
        session.commit()


def run_forever(
    connection: redis.Redis,
    stop: threading.Event | None = None,
    step: Callable[[redis.Redis], None] = tick,
    interval: float = TICK_SECONDS,
) -> None:
    """Run `step` every `interval` seconds until SIGTERM/SIGINT or `stop`; a failed step is logged, not fatal."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("dispatcher started")
    while not stop.is_set():
        started = time.monotonic()
        try:
            step(connection)
        except Exception:
            log.exception("dispatcher tick failed; trying again in %.1fs", interval)
        # A fixed rate, not a fixed pause: a slow tick must not push every later one back.
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    log.info("dispatcher stopped")
