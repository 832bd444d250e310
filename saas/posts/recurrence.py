"""Repeating posts: the rule, its occurrences in local wall time, and making the next one when it is time.

Occurrences are computed on wall-clock times in the post's zone, then turned into
UTC one by one, so "every Monday 09:00" stays 09:00 across daylight-saving changes.
Only one occurrence of a series exists ahead of time; the clock makes the next one
once the current one's time has come, starting after *now*, so a clock that was
down for a week makes one post, not seven.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from dateutil import rrule

from saas import timezones
from saas.posts.models import Post, PostState, PostTarget, TargetState
from saas.webhooks import events as webhook_events
from tenants import system_session, tenant_session

FREQUENCIES = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}
UNITS = {"daily": "day", "weekly": "week", "monthly": "month"}
MAX_INTERVAL = 365
MAX_COUNT = 1000


class RecurrenceError(ValueError):
    """A rule that cannot be used; the message says why."""


@dataclass(frozen=True)
class Rule:
    freq: str  # daily | weekly | monthly
    interval: int = 1
    weekdays: tuple[int, ...] = ()  # 0 = Monday; weekly only, empty: the start's weekday
    count: int | None = None  # end after this many occurrences
    until: date | None = None  # or on this local date (inclusive)

    def __post_init__(self) -> None:
        if self.freq not in FREQUENCIES:
            raise RecurrenceError("Choose daily, weekly or monthly.")
        if not 1 <= self.interval <= MAX_INTERVAL:
            raise RecurrenceError(f"Repeat every 1 to {MAX_INTERVAL} {UNITS[self.freq]}s.")
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise RecurrenceError("Choose weekdays from Monday to Sunday.")
        if self.count is not None and not 1 <= self.count <= MAX_COUNT:
            raise RecurrenceError(f"End after 1 to {MAX_COUNT} times.")

    def as_json(self) -> dict[str, Any]:
        return {
            "freq": self.freq,
            "interval": self.interval,
            "weekdays": list(self.weekdays),
            "count": self.count,
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        until = data.get("until")
        return cls(
            freq=str(data["freq"]),
            interval=int(data.get("interval") or 1),
            weekdays=tuple(int(d) for d in data.get("weekdays") or ()),
            count=int(data["count"]) if data.get("count") else None,
            until=date.fromisoformat(until) if until else None,
        )

    def describe(self) -> str:
        unit = UNITS[self.freq]
        every = f"every {unit}" if self.interval == 1 else f"every {self.interval} {unit}s"
        if self.weekdays:
            names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
            every += " on " + ", ".join(names[d] for d in sorted(self.weekdays))
        if self.count:
            every += f", {self.count} times"
        if self.until:
            every += f", until {self.until:%-d %b %Y}"
        return every.capitalize()


def local_occurrences(rule: Rule, start: datetime) -> Iterator[datetime]:
    """Wall-clock times of the series, the first being `start` (naive, in the series' zone)."""
    weekdays = rule.weekdays if rule.freq == "weekly" and rule.weekdays else None
    until = datetime.combine(rule.until, time.max) if rule.until else None
    series = rrule.rrule(
        FREQUENCIES[rule.freq],
        dtstart=start,
        interval=rule.interval,
        byweekday=weekdays,
        count=rule.count,
        until=until,
    )
    yield from series


def moment_of(local: datetime, zone: str) -> tuple[datetime, datetime]:
    """(wall time actually used, UTC): a time skipped by DST moves to the first minute after the gap."""
    try:
        return local, timezones.to_utc(local, zone, fold=0)
    except timezones.LocalTimeError as exc:
        after = exc.alternatives[-1]
        return after, timezones.to_utc(after, zone, fold=0)


def next_after(rule: Rule, start: datetime, zone: str, after: datetime) -> tuple[int, datetime, datetime] | None:
    """The first occurrence strictly after the UTC moment `after`: (its number from 1, wall time, UTC)."""
    for number, local in enumerate(local_occurrences(rule, start), start=1):
        used, moment = moment_of(local, zone)
        if moment > after:
            return number, used, moment
    return None


def due_series(now: datetime) -> list[tuple[int, int]]:
    """(tenant id, post id) of each series' latest occurrence whose time has come: the next one is due."""
    latest = (
        sa.select(sa.func.max(Post.id))
        .where(Post.series_id.is_not(None))
        .group_by(Post.tenant_id, Post.series_id)
        .scalar_subquery()
    )
    with system_session() as session:
        rows = session.execute(
            # An ended series has no rule on its latest occurrence: it is never looked at again.
            sa.select(Post.tenant_id, Post.id).where(
                Post.id.in_(latest),
                Post.recurrence.is_not(None),
                Post.scheduled_at <= now,
                Post.state != PostState.DRAFT,
            )
        )
        return [(tenant_id, post_id) for tenant_id, post_id in rows]


def materialize_next(session: so.Session, post_id: int, now: datetime) -> Post | None:
    """Make the occurrence after `post_id` (the series' latest), dated after `now`; None when the series ended.

    Locks the latest occurrence, and checks it is still the latest, so two clocks make it once.
    """
    current = session.scalar(
        sa.select(Post).where(Post.id == post_id).options(so.selectinload(Post.targets)).with_for_update()
    )
    if current is None or current.recurrence is None or current.series_id is None:
        return None
    newer = session.scalar(sa.select(Post.id).where(Post.series_id == current.series_id, Post.id > current.id).limit(1))
    if newer is not None:
        return None
    first = session.scalar(sa.select(Post).where(Post.id == current.series_id))
    start = (first or current).local_time
    if start is None:
        return None
    rule = Rule.from_json(current.recurrence)
    found = next_after(rule, start, current.timezone, max(now, current.scheduled_at or now))
    if found is None:
        current.recurrence = None  # the series has ended: nothing more to look for
        return None
    number, local, moment = found
    post = Post(
        author_id=current.author_id,
        text=current.text,
        media_urls=list(current.media_urls or []),
        media=list(current.media or []),
        thread=list(current.thread or []),
        content_warning=current.content_warning,
        visibility=current.visibility,
        language=current.language,
        tags=list(current.tags or []),
        notes=current.notes,
        first_comment=current.first_comment,
        state=PostState.SCHEDULED,
        scheduled_at=moment,
        timezone=current.timezone,
        local_time=local,
        recurrence=current.recurrence,
        series_id=current.series_id,
        occurrence_no=number,
    )
    session.add(post)
    session.flush()
    for target in current.targets:
        session.add(
            PostTarget(
                post_id=post.id,
                channel_id=target.channel_id,
                text_override=target.text_override,
                media_override=target.media_override,
                state=TargetState.SCHEDULED,
                scheduled_at=moment,
                due_at=moment,
                idempotency_key=uuid.uuid4().hex,
            )
        )
    session.flush()
    webhook_events.post_scheduled(session, post, [t.channel_id for t in current.targets])
    return post


def advance_all(now: datetime) -> int:
    """The clock's step: make the next occurrence of every series whose current one is due; returns how many."""
    made = 0
    for tenant_id, post_id in due_series(now):
        with tenant_session(tenant_id) as session:
            if materialize_next(session, post_id, now) is not None:
                made += 1
            session.commit()
    return made


def stop(session: so.Session, post_id: int) -> Post | None:
    """No more occurrences after the ones that exist: the series' rule is removed from all of them."""
    post = session.scalar(sa.select(Post).where(Post.id == post_id))
    if post is None:
        return None
    if post.series_id is None:
        raise RecurrenceError("This post does not repeat.")
    session.execute(
        sa.update(Post).where(Post.series_id == post.series_id).values(recurrence=None),
        execution_options={"synchronize_session": "fetch"},
    )
    return post
