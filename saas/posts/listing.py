"""Posts as read by the API: one statement per page, each post with its targets aggregated in SQL.

No ORM objects are built: a page of fifty posts is one round trip and fifty small frozen views, which
keeps the list cheap enough to serve hundreds of times a second from a workspace with many posts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import aggregate_order_by

from saas.posts.calendar import Filters, filtered
from saas.posts.models import Post, PostState, PostTarget, TargetState


@dataclass(frozen=True)
class PageFilters:
    start: datetime | None = None  # scheduled at or after
    end: datetime | None = None  # scheduled before
    state: PostState | None = None
    channel_id: int | None = None
    tag: str | None = None


@dataclass(frozen=True)
class TargetView:
    id: int
    channel_id: int
    state: TargetState
    scheduled_at: datetime
    text_override: str | None
    media_override: list[dict[str, str]] | None
    published_at: datetime | None
    remote_url: str | None
    last_error: str | None
    blocked_reason: str | None


@dataclass(frozen=True)
class PostView:
    """What a reader of a post sees; the attributes `Post` has, so the composer's helpers read either."""

    id: int
    revision: int
    state: PostState
    text: str
    scheduled_at: datetime | None
    timezone: str
    thread: list[dict[str, Any]]
    tags: list[str]
    notes: str | None
    first_comment: str | None
    media: list[dict[str, str]]
    draft_targets: list[dict[str, Any]]
    recurrence: dict[str, Any] | None
    series_id: int | None
    author_id: int | None
    created_at: datetime
    updated_at: datetime
    targets: tuple[TargetView, ...]


_TARGET_COLUMNS = (
    "id",
    "channel_id",
    "state",
    "scheduled_at",
    "text_override",
    "media_override",
    "published_at",
    "remote_url",
    "last_error",
    "blocked_reason",
)
_MOMENTS = ("scheduled_at", "published_at")


@cache
def _targets() -> Any:
    """Built once: the statement is the same every time, and building it costs more than running it."""
    fields = []
    for name in _TARGET_COLUMNS:
        fields += [sa.literal(name), getattr(PostTarget, name)]
    return (
        sa.select(sa.func.json_agg(aggregate_order_by(sa.func.json_build_object(*fields), PostTarget.id)))
        .where(PostTarget.tenant_id == Post.tenant_id, PostTarget.post_id == Post.id)
        .correlate(Post)
        .scalar_subquery()
        .label("targets")
    )


_POST_COLUMNS = (
    Post.id,
    Post.revision,
    Post.state,
    Post.text,
    Post.scheduled_at,
    Post.timezone,
    Post.thread,
    Post.tags,
    Post.notes,
    Post.first_comment,
    Post.media,
    Post.draft_targets,
    Post.recurrence,
    Post.series_id,
    Post.author_id,
    Post.created_at,
    Post.updated_at,
)


@cache
def _base() -> sa.Select[Any]:
    return sa.select(*_POST_COLUMNS, _targets())


def _view(row: Any) -> PostView:
    values = row._asdict()
    values["targets"] = tuple(_target(t) for t in values["targets"] or ())
    return PostView(**values)


def _target(raw: dict[str, Any]) -> TargetView:
    values = dict(raw)
    values["state"] = TargetState(values["state"])
    for name in _MOMENTS:  # JSON carries them as ISO 8601 text with the offset
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return TargetView(**values)


def page(
    session: so.Session, filters: PageFilters, after: tuple[datetime | None, int] | None, limit: int
) -> list[PostView]:
    """One page in time order (undated drafts last), after the keyset `after` = (scheduled_at, id).

    The window and the keyset both bound `scheduled_at`, so a page deep in a large workspace still reads
    through `ix_posts_tenant_scheduled_at`.
    """
    query = _base()
    if filters.start is not None:
        query = query.where(Post.scheduled_at >= filters.start)
    if filters.end is not None:
        query = query.where(Post.scheduled_at < filters.end)
    if filters.state is not None:
        query = query.where(Post.state == filters.state)
    query = filtered(query, Filters(channel_id=filters.channel_id, tag=filters.tag))
    if after is not None:
        moment, last_id = after
        if moment is None:
            query = query.where(Post.scheduled_at.is_(None), Post.id > last_id)
        else:
            later = sa.and_(Post.scheduled_at >= moment, sa.or_(Post.scheduled_at > moment, Post.id > last_id))
            query = query.where(sa.or_(later, Post.scheduled_at.is_(None)))
    query = query.order_by(Post.scheduled_at.asc().nulls_last(), Post.id).limit(limit)
    return [_view(row) for row in session.execute(query)]


def one(session: so.Session, post_id: int, lock: bool = False) -> PostView | None:
    """One post; `lock` holds its row until the transaction ends (an edit checking the version it read)."""
    query = _base().where(Post.id == post_id)
    row = session.execute(query.with_for_update(of=Post) if lock else query).first()
    return _view(row) if row is not None else None
