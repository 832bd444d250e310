"""Posts as the API reads them: one statement per page, the whole page one JSON text built by PostgreSQL.

A page of fifty posts, each with its targets, comes back as a single value that orjson parses in one
call: no ORM objects, no rows to wrap, no timestamps to parse (moments arrive as RFC 3339 text in UTC,
the API's form). `saas.api.posts.post_out` shapes each document for the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any

import orjson
import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import aggregate_order_by

from saas.posts.calendar import Filters, filtered
from saas.posts.models import Post, PostState, PostTarget


class Document(SimpleNamespace):
    """A post's JSON document read by attribute (`post.targets`, `target.channel_id`), as the composer's
    helpers in saas.posts.service read a `Post`. Moments are RFC 3339 text in UTC."""


@dataclass(frozen=True)
class PageFilters:
    start: datetime | None = None  # scheduled at or after
    end: datetime | None = None  # scheduled before
    state: PostState | None = None
    channel_id: int | None = None
    tag: str | None = None


def _utc(moment: Any) -> Any:
    # As a timestamp in UTC without its zone, JSON writes it `2027-03-07T08:14:24` (whatever the session's
    # TimeZone) and cheaply; `_moment` adds the `Z`.
    return sa.func.timezone(_sql("'UTC'"), moment)


_POST_MOMENTS = ("scheduled_at", "created_at", "updated_at")
_TARGET_MOMENTS = ("scheduled_at", "published_at")


def _with_zone(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`2027-03-07T08:14:24.5` (JSON's form, which drops trailing zeros) as `2027-03-07T08:14:24.500000Z`:
    the API writes every moment as pydantic writes the ones it serialises."""
    for name in names:
        value = values[name]
        if value is not None:
            whole, dot, fraction = value.partition(".")
            values[name] = f"{whole}.{fraction:0<6}Z" if dot else f"{whole}Z"
    return values


def _sql(constant: str) -> Any:
    """A constant written into the statement, not sent as a parameter: fewer parameters, cheaper runs."""
    return sa.literal_column(constant)


def _object(pairs: dict[str, Any]) -> Any:
    return sa.func.json_build_object(*(item for name, value in pairs.items() for item in (_sql(f"'{name}'"), value)))


@cache
def _document() -> Any:
    """Built once: the statement is the same every time, and building it costs more than running it."""
    target = _object(
        {
            "id": PostTarget.id,
            "channel_id": PostTarget.channel_id,
            "state": PostTarget.state,
            "scheduled_at": _utc(PostTarget.scheduled_at),
            "text_override": PostTarget.text_override,
            "media_override": PostTarget.media_override,
            "published_at": _utc(PostTarget.published_at),
            "remote_url": PostTarget.remote_url,
            "last_error": PostTarget.last_error,
            "blocked_reason": PostTarget.blocked_reason,
        }
    )
    targets = (
        sa.select(sa.func.coalesce(sa.func.json_agg(aggregate_order_by(target, PostTarget.id)), sa.text("'[]'::json")))
        .where(PostTarget.tenant_id == Post.tenant_id, PostTarget.post_id == Post.id)
        .correlate(Post)
        .scalar_subquery()
    )
    return _object(
        {
            "id": Post.id,
            "revision": Post.revision,
            "state": Post.state,
            "text": Post.text,
            "scheduled_at": _utc(Post.scheduled_at),
            "timezone": Post.timezone,
            "thread": Post.thread,
            "tags": Post.tags,
            "notes": Post.notes,
            "first_comment": Post.first_comment,
            "media": Post.media,
            "draft_targets": Post.draft_targets,
            "recurrence": Post.recurrence,
            "series_id": Post.series_id,
            "author_id": Post.author_id,
            "created_at": _utc(Post.created_at),
            "updated_at": _utc(Post.updated_at),
            "targets": targets,
        }
    ).label("document")


ORDER = (Post.scheduled_at.asc().nulls_last(), Post.id)


def _documents(session: so.Session, query: sa.Select[Any]) -> list[Document]:
    """The documents of `query`'s rows, in its order, fetched as one JSON text."""
    rows = query.subquery("page")
    whole = sa.select(
        sa.cast(
            sa.func.coalesce(
                sa.func.json_agg(
                    aggregate_order_by(rows.c.document, rows.c.scheduled_at.asc().nulls_last(), rows.c.id)
                ),
                sa.text("'[]'::json"),
            ),
            sa.Text,
        )
    )
    documents = []
    for post in orjson.loads(session.execute(whole).scalar_one()):
        post["targets"] = [Document(**_with_zone(t, _TARGET_MOMENTS)) for t in post["targets"]]
        documents.append(Document(**_with_zone(post, _POST_MOMENTS)))
    return documents


def page(
    session: so.Session, filters: PageFilters, after: tuple[datetime | None, int] | None, limit: int
) -> list[Document]:
    """One page in time order (undated drafts last), after the keyset `after` = (scheduled_at, id).

    The window and the keyset both bound `scheduled_at`, so a page deep in a large workspace still reads
    through `ix_posts_tenant_scheduled_at`.
    """
    query = sa.select(Post.id, Post.scheduled_at, _document())
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
    return _documents(session, query.order_by(*ORDER).limit(limit))


def one(session: so.Session, post_id: int) -> Document | None:
    """One post's document, or None when the workspace has no such post."""
    found = _documents(session, sa.select(Post.id, Post.scheduled_at, _document()).where(Post.id == post_id))
    return found[0] if found else None
