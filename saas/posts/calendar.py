"""What the calendar shows: the posts of one time window, read through the (tenant_id, scheduled_at) index.

Only the visible window is read, and only the columns a calendar cell needs, so a
workspace with tens of thousands of posts costs what its visible month costs.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import aggregate_order_by

from saas import timezones
from saas.channels.models import Channel
from saas.posts.models import Post, PostState, PostTarget, TargetState

# The states a calendar entry is colored by: the post's own, except that a target needing a person wins.
DISPLAY_STATES = (
    "draft",
    "in_review",
    "changes_requested",
    "approved",
    "scheduled",
    "published",
    "partially_published",
    "failed",
    "unconfirmed",
    "blocked",
    "canceled",
)
SNIPPET = 140
SHORT = 60
# Entries the calendar lets you drag or move: nothing of them has gone out yet.
MOVABLE_STATES = frozenset({"draft", "in_review", "changes_requested", "approved", "scheduled", "blocked"})
MAX_WINDOW = timedelta(days=92)


@dataclass(frozen=True)
class Filters:
    channel_id: int | None = None
    state: str | None = None
    tag: str | None = None
    author_id: int | None = None


@dataclass(frozen=True)
class Entry:
    post_id: int
    snippet: str
    state: str
    scheduled_at: datetime | None
    local: datetime | None  # the moment in the calendar's zone
    tags: tuple[str, ...]
    author_id: int | None
    channels: tuple[str, ...] = field(default=())  # handles

    # Ready-made for the calendar cell, which a busy month renders about a thousand times.
    @property
    def hhmm(self) -> str:
        return f"{self.local:%H:%M}" if self.local else ""

    @property
    def day(self) -> str:
        return self.local.date().isoformat() if self.local else ""

    @property
    def short(self) -> str:
        return self.snippet if len(self.snippet) <= SHORT else self.snippet[: SHORT - 1].rstrip() + "…"

    @property
    def state_label(self) -> str:
        return self.state.replace("_", " ")

    @property
    def movable(self) -> bool:
        return self.state in MOVABLE_STATES


def day_start(day: date, zone: str) -> datetime:
    """The UTC moment a local day begins (where midnight is skipped, the first minute that exists)."""
    try:
        return timezones.to_utc(datetime.combine(day, time()), zone, fold=0)
    except timezones.LocalTimeError as exc:
        return timezones.to_utc(exc.alternatives[-1], zone, fold=0)


def display_state(post_state: PostState, target_states: set[TargetState]) -> str:
    if TargetState.UNCONFIRMED in target_states:
        return "unconfirmed"
    if TargetState.BLOCKED in target_states and post_state is not PostState.CANCELED:
        return "blocked"
    return post_state.value


def _columns(full_text: bool) -> tuple[Any, ...]:
    # Each post's targets as "state:handle" in one correlated aggregate: one statement, one round trip.
    targets = (
        sa.select(
            sa.func.array_agg(
                aggregate_order_by(sa.cast(PostTarget.state, sa.String) + ":" + Channel.handle, PostTarget.id)
            )
        )
        .select_from(PostTarget)
        .join(Channel, sa.and_(Channel.tenant_id == PostTarget.tenant_id, Channel.id == PostTarget.channel_id))
        .where(PostTarget.tenant_id == Post.tenant_id, PostTarget.post_id == Post.id)
        .correlate(Post)
        .scalar_subquery()
    )
    text = Post.text if full_text else sa.func.substr(Post.text, 1, SNIPPET)
    return (Post.id, text, Post.state, Post.scheduled_at, Post.tags, Post.author_id, targets)


def window(
    session: so.Session,
    start: date,
    end: date,
    zone: str,
    filters: Filters = Filters(),
    limit: int = 5000,
    full_text: bool = False,
    max_days: int = MAX_WINDOW.days,
) -> list[Entry]:
    """Posts scheduled from local day `start` up to (not including) local day `end`, in time order.

    `snippet` holds the first characters of the text, or all of it with `full_text`.
    """
    if (end - start).days > max_days:
        end = start + timedelta(days=max_days)
    query = (
        sa.select(*_columns(full_text))
        .where(Post.scheduled_at >= day_start(start, zone), Post.scheduled_at < day_start(end, zone))
        .order_by(Post.scheduled_at, Post.id)
        .limit(limit)
    )
    return _entries(session, filtered(query, filters), zone, filters)


def unscheduled_drafts(session: so.Session, filters: Filters = Filters(), limit: int = 50) -> list[Entry]:
    query = (
        sa.select(*_columns(False))
        .where(Post.scheduled_at.is_(None), Post.state == PostState.DRAFT)
        .order_by(Post.updated_at.desc())
        .limit(limit)
    )
    return _entries(session, filtered(query, filters), "UTC", filters)


def filtered(query: sa.Select[Any], filters: Filters) -> sa.Select[Any]:
    if filters.channel_id is not None:
        query = query.where(on_channel(filters.channel_id, [{"channel_id": filters.channel_id}]))
    if filters.tag:
        query = query.where(tagged(sa.literal(filters.tag.strip().lower())))
    if filters.author_id is not None:
        query = query.where(Post.author_id == filters.author_id)
    return query


def on_channel(channel_id: Any, drafted: Any) -> sa.ColumnElement[bool]:
    """Posts going to a channel (a target), or drafts that keep it; `drafted` is `[{"channel_id": channel_id}]`.
    Values or bound parameters (saas.posts.listing compiles its statements once)."""
    on_target = sa.select(PostTarget.id).where(PostTarget.post_id == Post.id, PostTarget.channel_id == channel_id)
    return sa.or_(on_target.exists(), Post.draft_targets.contains(drafted))


def tagged(tag: Any) -> sa.ColumnElement[bool]:
    """Posts carrying `tag` (lower-cased, a value or a bound parameter)."""
    return tag == sa.any_(Post.tags)


def _entries(session: so.Session, query: sa.Select[Any], zone: str, filters: Filters) -> list[Entry]:
    tz = zoneinfo.ZoneInfo(zone)
    entries = []
    for post_id, snippet, post_state, scheduled_at, tags, author_id, targets in session.execute(query):
        pairs = [pair.split(":", 1) for pair in targets or ()]
        shown = display_state(post_state, {TargetState(state) for state, _handle in pairs})
        if filters.state and shown != filters.state:
            continue
        entries.append(
            Entry(
                post_id=post_id,
                snippet=snippet,
                state=shown,
                scheduled_at=scheduled_at,
                local=scheduled_at.astimezone(tz) if scheduled_at else None,
                tags=tuple(tags or ()),
                author_id=author_id,
                channels=tuple(handle for _state, handle in pairs),
            )
        )
    return entries


def month_grid(month: date) -> list[list[date]]:
    """The weeks (Monday first) that cover `month`, as rows of seven days."""
    first = month.replace(day=1)
    start = first - timedelta(days=first.weekday())
    next_month = (first + timedelta(days=32)).replace(day=1)
    weeks = []
    day = start
    while day < next_month:
        weeks.append([day + timedelta(days=i) for i in range(7)])
        day += timedelta(days=7)
    return weeks
