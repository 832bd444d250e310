"""The outbox: record an event in the transaction of the change that causes it, for the endpoints that want it.

Every function here runs on the caller's session (its transaction), so an event is written if and only
if the change commits. Nothing is stored for a workspace with no enabled endpoint subscribed to the type:
the statement's first step finds none and the rest does nothing. A `dedupe_key` names the happening, so
reporting it twice (a retried job) makes one event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from tenants.scoping import bound_tenant_id

# Type → what it means, as the settings page and the README say it.
EVENT_TYPES = {
    "post.scheduled": "A post was scheduled, or its time or content changed (a new revision).",
    "post.published": "A post went live on one channel.",
    "post.failed": "A post could not be published to one channel.",
    "post.unconfirmed": "We could not tell whether a post went live on one channel; someone should check.",
    "approval.requested": "A post was sent for approval.",
    "approval.approved": "A post's approval is complete.",
    "approval.changes_requested": "A reviewer asked for changes to a post.",
    "channel.needs_reconnect": "A channel stopped accepting our connection and must be reconnected.",
}
TEST_EVENT = "webhook.test"  # sent by "Send test event" to one endpoint, whatever it subscribes to

# Subscribed endpoints, the event (once per dedupe key), one pending delivery per endpoint: common table
# expressions, so they can run alone (`_statement`) or ride inside another statement (`published_fan_out`).
_FAN_OUT = """
subscribed AS (
    SELECT id FROM webhook_endpoints WHERE tenant_id = :tenant AND enabled AND CAST({type} AS varchar) = ANY(events)
), event AS (
    INSERT INTO webhook_events (tenant_id, type, dedupe_key, payload)
    {rows}
    ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
    RETURNING id
), delivered AS (
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, state, next_attempt_at)
    SELECT :tenant, s.id, e.id, 'pending', now() FROM subscribed s CROSS JOIN event e
    RETURNING id
)"""
# A post target's event, its payload built from the target rows (so every path reports the same shape).
# The key names the target and what makes this outcome distinct (its attempt, or its idempotency key).
_TARGET_ROWS = """
    SELECT t.tenant_id, CAST({type} AS text),
           CAST({type} AS text) || ':' || t.id || ':' || CASE WHEN CAST({type} AS text) = 'post.published'
                                                      THEN t.idempotency_key ELSE t.attempt_count::text END,
           jsonb_build_object(
               'post_id', t.post_id, 'target_id', t.id, 'state', t.state,
               'channel', jsonb_build_object('id', c.id, 'network', c.network, 'handle', c.handle),
               'scheduled_at', t.scheduled_at, 'published_at', t.published_at,
               'remote_id', t.remote_id, 'remote_url', t.remote_url,
               'error', CASE WHEN t.state = 'published' THEN NULL ELSE t.last_error END,
               'attempts', t.attempt_count)
    FROM {targets} t JOIN channels c ON c.tenant_id = t.tenant_id AND c.id = t.channel_id
    WHERE t.tenant_id = :tenant AND EXISTS (SELECT 1 FROM subscribed){where}"""


def _statement(rows: str) -> sa.TextClause:
    return sa.text("WITH " + _FAN_OUT.format(type=":type", rows=rows) + " SELECT count(*) FROM delivered")


EMIT = _statement(
    "SELECT :tenant, CAST(:type AS text), CAST(:key AS text), CAST(:payload AS jsonb)"
    " WHERE EXISTS (SELECT 1 FROM subscribed)"
)
EMIT_FOR_TARGETS = _statement(_TARGET_ROWS.format(type=":type", targets="post_targets", where=" AND t.id = ANY(:ids)"))


# What a target event reads of a post_targets row: an UPDATE feeding `published_fan_out` returns these.
TARGET_EVENT_COLUMNS = (
    "t.id, t.tenant_id, t.post_id, t.channel_id, t.state, t.scheduled_at, t.published_at, t.remote_id, "
    "t.remote_url, t.last_error, t.attempt_count, t.idempotency_key"
)


def published_fan_out(targets_cte: str) -> str:
    """The `post.published` outbox as common table expressions over `targets_cte` (post_targets rows just
    published, from an UPDATE … RETURNING TARGET_EVENT_COLUMNS), to append to the WITH of the publish job's statement:
    no extra round trip, and nothing beyond one index probe for a workspace without a subscribed endpoint.
    The statement must bind :tenant."""
    published = "'post.published'"
    return _FAN_OUT.format(type=published, rows=_TARGET_ROWS.format(type=published, targets=targets_cte, where=""))


def _tenant(session: so.Session) -> int:
    tenant_id = bound_tenant_id(session)
    assert tenant_id is not None, "webhook events are emitted in a tenant's session"
    return tenant_id


def emit(session: so.Session, type_: str, key: str, data: dict[str, Any]) -> None:
    """Record `type_` for every enabled endpoint subscribed to it, in the session's transaction."""
    assert type_ in EVENT_TYPES, type_
    session.flush()  # the change this event reports is written first, in the same transaction
    session.execute(
        EMIT, {"tenant": _tenant(session), "type": type_, "key": key[:200], "payload": json.dumps(data, default=str)}
    )


def emit_for_targets(connection: sa.Connection, tenant_id: int, type_: str, target_ids: Sequence[int]) -> None:
    """The target events (post.published / failed / unconfirmed) for many targets in one statement.

    Takes a connection so the publish job's hot path can run it beside its own set-based statements.
    """
    assert type_ in ("post.published", "post.failed", "post.unconfirmed"), type_
    connection.execute(EMIT_FOR_TARGETS, {"tenant": tenant_id, "type": type_, "ids": list(target_ids)})


def emit_for_target(session: so.Session, type_: str, target_id: int) -> None:
    session.flush()
    emit_for_targets(session.connection(), _tenant(session), type_, [target_id])


# --- what each kind of event says ----------------------------------------------------------------------------


def post_scheduled(session: so.Session, post: Any, channel_ids: Sequence[int]) -> None:
    """A post was scheduled (or its time or content changed): one event per revision."""
    if post.scheduled_at is None:
        return
    emit(
        session,
        "post.scheduled",
        f"post.scheduled:{post.id}:{post.revision}",
        {
            "post_id": post.id,
            "revision": post.revision,
            "text": post.text,
            "scheduled_at": post.scheduled_at.isoformat(),
            "timezone": post.timezone,
            "local_time": post.local_time.isoformat() if post.local_time else None,
            "channel_ids": sorted(channel_ids),
        },
    )


def approval(session: so.Session, type_: str, request: Any, *, by: str | None = None, comment: str = "") -> None:
    """approval.requested / approved / changes_requested for one approval request."""
    emit(
        session,
        type_,
        f"{type_}:{request.id}:{request.step}",
        {
            "post_id": request.post_id,
            "revision": request.revision,
            "request_id": request.id,
            "step": request.steps[request.step]["name"] if request.steps else None,
            "by": by,
            "comment": comment or None,
        },
    )


def channel_needs_reconnect(session: so.Session, channel: Any) -> None:
    changed = channel.health_changed_at.isoformat() if channel.health_changed_at else ""
    emit(
        session,
        "channel.needs_reconnect",
        f"channel.needs_reconnect:{channel.id}:{changed}",
        {
            "channel": {"id": channel.id, "network": channel.network, "handle": channel.handle},
            "reason": channel.health_reason,
            "since": changed or None,
        },
    )
