"""Moving-window attempt limits in Redis, per account and per client address."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app, request
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from saas.extensions import redis_client


class TooManyAttempts(Exception):
    """Raised when an action was tried too often; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(f"Too many attempts. Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again.")


def _storage() -> RedisStorage:
    storage = current_app.extensions.get("ratelimit_storage")
    if storage is None:
        storage = current_app.extensions["ratelimit_storage"] = RedisStorage(
            current_app.config["REDIS_URL"],
            connection_pool=redis_client().connection_pool,
            key_prefix="ratelimit",
        )
    return storage


def _limiter() -> MovingWindowRateLimiter:
    limiter = current_app.extensions.get("ratelimiter")
    if limiter is None:
        limiter = current_app.extensions["ratelimiter"] = MovingWindowRateLimiter(_storage())
    return limiter


@dataclass(frozen=True)
class Budget:
    """Where a caller stands in its window, for the `RateLimit-*` headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


def api_hit(token_id: int) -> Budget:
    """Count one API request of a token against `API_RATE_LIMIT`: a fixed window, one Redis round trip.

    The `limits` parser reads the setting; the counting is a plain INCR so the hot path pays one call.
    """
    item = parse(current_app.config["API_RATE_LIMIT"])
    window = item.get_expiry()
    key = f"ratelimit:api:{token_id}:{int(time.time() // window)}"
    pipe = redis_client().pipeline(transaction=True)
    pipe.set(key, 0, ex=window, nx=True)  # the window's counter, expiring with it (EXPIRE NX needs Redis 7)
    pipe.incr(key)
    count = int(pipe.execute()[1])
    reset = window - int(time.time() % window)
    return Budget(count <= item.amount, item.amount, max(0, item.amount - count), max(1, reset))


def client_ip() -> str:
    return request.remote_addr or "unknown"


def hit(action: str, *, account: str | None) -> None:
    """Count one attempt at `action` by this client (and account); raise when over a limit.

    Limits come from config: `<ACTION>_LIMIT_PER_IP` and `<ACTION>_LIMIT_PER_ACCOUNT`.
    Every attempt counts, successful or not, so parallel guesses cannot race past it.
    """
    limiter = _limiter()
    checks = [(f"{action.upper()}_LIMIT_PER_IP", "ip", client_ip())]
    if account:
        checks.append((f"{action.upper()}_LIMIT_PER_ACCOUNT", "account", account.strip().lower()))
    for setting, kind, value in checks:
        item = parse(current_app.config[setting])
        if not limiter.hit(item, action, kind, value):
            reset_at = limiter.get_window_stats(item, action, kind, value).reset_time
            raise TooManyAttempts(max(1, int(reset_at - time.time())))
