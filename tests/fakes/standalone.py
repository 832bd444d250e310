"""Pieces the per-network fakes share on top of `server`: a movable clock, fixed rate windows, a standalone loop."""

from __future__ import annotations

import dataclasses
import signal
import threading
from datetime import UTC, datetime, timedelta

from tests.fakes.network import RateLimit
from tests.fakes.server import FakeServer


class FakeClock:
    """The fake's own clock (real UTC plus whatever a test advanced) and the lock guarding the fake's state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        with self.lock:
            self._offset += delta


@dataclasses.dataclass(frozen=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime


class RateWindows:
    """Fixed windows per key (an account), each starting with its first request. Guarded by the caller's lock."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._windows: dict[str, tuple[datetime, int]] = {}

    def set_limit(self, limit: int, window: timedelta) -> None:
        self.limit = RateLimit(limit, window)
        self._windows.clear()

    def consume(self, key: str, now: datetime, cost: int = 1) -> Quota:
        started, used = self._windows.get(key, (now, 0))
        if now >= started + self.limit.window:
            started, used = now, 0
        allowed = used + cost <= self.limit.limit
        if allowed:
            used += cost
        self._windows[key] = (started, used)
        return Quota(allowed, self.limit.limit, max(self.limit.limit - used, 0), started + self.limit.window)


def serve_until_stopped(fake: FakeServer) -> int:
    """Start the fake, print its base URL on the first line of stdout, serve until SIGTERM/SIGINT."""
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        print(fake.base_url, flush=True)
        while not done.wait(0.5):
            pass
    return 0
