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
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from saas.posts.calendar import on_channel, tagged
from saas.posts.models import Post, PostState, PostTarget
from tenants.scoping import TenantScopeError, bound_tenant_id


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
    # TimeZone) and cheaply; `_rfc3339` adds the `Z`.
    return sa.func.timezone(_sql("'UTC'"), moment)


_POST_MOMENTS = ("scheduled_at", "created_at", "updated_at")
_TARGET_MOMENTS = ("scheduled_at", "published_at")


def _rfc3339(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
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
        sa.select(sa.func.coalesce(sa.func.json_agg(aggregate_order_by(target, PostTarget.id)), _sql("'[]'::json")))
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


@dataclass(frozen=True)
class _Shape:
    """Which filters a page statement has: each shape is compiled once per process, then run with values."""

    start: bool = False
    end: bool = False
    state: bool = False
    channel: bool = False
    tag: bool = False
    after: str | None = None  # "dated" | "undated": the keyset of the previous page's last post
    post: bool = False  # one post by id, instead of a page


@cache
def _statement(shape: _Shape) -> str:
    """The SQL of a page of documents of this shape, in time order, as one JSON text.

    Compiled once and run as text (`exec_driver_sql`): building and compiling the statement cost three
    times what PostgreSQL spends on it. So the ORM's tenant criteria are not added to it: it filters
    on the tenant itself (`:tenant`), and row-level security checks every row again.
    """
    moment = sa.DateTime(timezone=True)
    query = sa.select(Post.id, Post.scheduled_at, _document()).where(Post.tenant_id == sa.bindparam("tenant"))
    if shape.post:
        query = query.where(Post.id == sa.bindparam("post_id", type_=sa.Integer))
    if shape.start:
        query = query.where(Post.scheduled_at >= sa.bindparam("start", type_=moment))
    if shape.end:
        query = query.where(Post.scheduled_at < sa.bindparam("end", type_=moment))
    if shape.state:
        query = query.where(Post.state == sa.bindparam("state", type_=sa.String))
    if shape.channel:
        query = query.where(
            on_channel(sa.bindparam("channel_id", type_=sa.Integer), sa.bindparam("drafted", type_=JSONB))
        )
    if shape.tag:
        query = query.where(tagged(sa.bindparam("tag", type_=sa.String)))
    last_id = sa.bindparam("after_id", type_=sa.Integer)
    if shape.after == "undated":
        query = query.where(Post.scheduled_at.is_(None), Post.id > last_id)
    elif shape.after == "dated":
        after = sa.bindparam("after", type_=moment)
        later = sa.and_(Post.scheduled_at >= after, sa.or_(Post.scheduled_at > after, Post.id > last_id))
        query = query.where(sa.or_(later, Post.scheduled_at.is_(None)))
    if not shape.post:
        query = query.order_by(*ORDER).limit(sa.bindparam("limit", type_=sa.Integer))
    rows = query.subquery("page")
    in_order = aggregate_order_by(rows.c.document, rows.c.scheduled_at.asc().nulls_last(), rows.c.id)
    whole = sa.select(sa.cast(sa.func.coalesce(sa.func.json_agg(in_order), _sql("'[]'::json")), sa.Text))
    return str(whole.compile(dialect=postgresql_psycopg.dialect()))


def _documents(session: so.Session, shape: _Shape, values: dict[str, Any]) -> list[Document]:
    tenant_id = bound_tenant_id(session)
    if tenant_id is None:
        raise TenantScopeError("posts are read in a session bound to a tenant")
    text = session.connection().exec_driver_sql(_statement(shape), {**values, "tenant": tenant_id})
    documents = []
    for post in orjson.loads(text.scalar_one()):
        post["targets"] = [Document(**_rfc3339(t, _TARGET_MOMENTS)) for t in post["targets"]]
        documents.append(Document(**_rfc3339(post, _POST_MOMENTS)))
    return documents


def page(
    session: so.Session, filters: PageFilters, after: tuple[datetime | None, int] | None, limit: int
) -> list[Document]:
    """One page in time order (undated drafts last), after the keyset `after` = (scheduled_at, id).

    The window and the keyset both bound `scheduled_at`, so a page deep in a large workspace still reads
    through `ix_posts_tenant_scheduled_at`.
    """
    values: dict[str, Any] = {"limit": limit}
    if filters.start is not None:
        values["start"] = filters.start
    if filters.end is not None:
        values["end"] = filters.end
    if filters.state is not None:
        values["state"] = filters.state.value
    if filters.channel_id is not None:
        values["channel_id"] = filters.channel_id
        values["drafted"] = Jsonb([{"channel_id": filters.channel_id}])
    if filters.tag:
        values["tag"] = filters.tag.strip().lower()
    keyset = None
    if after is not None:
        values["after"], values["after_id"] = after
        keyset = "undated" if after[0] is None else "dated"
    shape = _Shape(
        start="start" in values,
        end="end" in values,
        state="state" in values,
        channel="channel_id" in values,
        tag="tag" in values,
        after=keyset,
    )
    return _documents(session, shape, values)


def one(session: so.Session, post_id: int) -> Document | None:
    """One post's document, or None when the workspace has no such post."""
    found = _documents(session, _Shape(post=True), {"post_id": post_id})
    return found[0] if found else None
