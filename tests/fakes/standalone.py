"""Pieces the per-network fakes share on top of `server`: a movable clock, fixed rate windows, a timeline page."""

from __future__ import annotations

import dataclasses
import html
import threading
from datetime import UTC, datetime, timedelta

from tests.fakes.network import RateLimit
from tests.fakes.server import FakeResponse


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


@dataclasses.dataclass(frozen=True)
class PageEntry:
    created_at: datetime
    text: str
    is_reply: bool = False
    attachments: int = 0


def timeline_page(handle: str, entries: list[PageEntry] | None) -> FakeResponse:
    """A plain HTML page of an account's posts, newest first (None: no such account), for `make run` demos."""
    if entries is None:
        return FakeResponse(status=404, body=b"Not found", headers={"Content-Type": "text/plain"})
    items = "".join(
        f"<article><p><small>{e.created_at:%Y-%m-%d %H:%M:%S} UTC{' · reply' if e.is_reply else ''}"
        f"{f' · {e.attachments} attachment(s)' if e.attachments else ''}</small></p>"
        f"<p>{html.escape(e.text).replace(chr(10), '<br>')}</p></article>"
        for e in sorted(entries, key=lambda e: e.created_at, reverse=True)
    )
    page = f"<!doctype html><title>@{html.escape(handle)}</title><h1>@{html.escape(handle)}</h1>{items}"
    return FakeResponse(status=200, body=page.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
