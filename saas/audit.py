"""The audit log: every change made in a workspace, by whom, and for agency staff "staff X for client Y".

A change is a request in a workspace whose database work was committed. Session events note the
commit; the workspace blueprint's after-request hook writes one entry for the request. Reading a page
writes nothing, and an action refused and rolled back writes nothing either. A view may say in people's
words what it changed (`note`); changes made outside a workspace page (accepting an invitation, a
reviewer's decision from an emailed link, Stripe's webhooks) are written with `record_event`.

Reading: `listing` and `stream` merge every source in `SOURCES`, newest first. Entries of this table are
one source (`workspace_rows`); another (sign-ins and 2FA changes, kept per user) joins by adding a
function of the same shape there.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, g, has_request_context
from sqlalchemy import event

from saas.identity.events import label_of
from saas.identity.models import AccountEvent
from saas.identity.sessions import device_label
from tenants.models import AuditEntry, Membership, User
from tenants.scoping import bound_tenant_id
from tenants.service import Workspace

# Kinds of change, for the viewer's filter, in the order it lists them.
KINDS = {
    "members": "Members and roles",
    "invitations": "Invitations",
    "channels": "Channels",
    "posts": "Posts",
    "approvals": "Approvals",
    "media": "Media",
    "billing": "Billing",
    "agency": "Agency",
    "settings": "Settings",
    "security": "Sign-in and security",
    "other": "Other",
}
# Endpoint prefix → kind; the first that matches wins.
KIND_BY_ENDPOINT = (
    ("workspace.team.invite", "invitations"),
    ("workspace.team.revoke", "invitations"),
    ("workspace.team.", "members"),
    ("workspace.channels.", "channels"),
    ("workspace.approval", "approvals"),
    ("workspace.posts.", "posts"),
    ("workspace.calendar", "posts"),
    ("workspace.bulk.", "posts"),
    ("workspace.queue.", "posts"),
    ("workspace.media.", "media"),
    ("workspace.billing.", "billing"),
    ("workspace.agency.", "agency"),
    ("workspace.end_agency", "agency"),
    ("workspace.settings", "settings"),
    ("workspace.api_tokens.", "security"),
    ("workspace.webhooks.", "settings"),
)
# How entries read, by endpoint; any other change reads as its endpoint's name.
ACTIONS = {
    "workspace.posts.new": "Created a post",
    "workspace.posts.edit": "Edited a post",
    "workspace.posts.post_action": "Changed a post",
    "workspace.posts.move": "Rescheduled a post",
    "workspace.posts.target_action": "Acted on a post's channel",
    "workspace.posts.reschedule": "Rescheduled a held post",
    "workspace.approval.submit": "Sent a post for approval",
    "workspace.approval.submit_week": "Sent the next 7 days' posts for approval",
    "workspace.approval.decide": "Decided on a post",
    "workspace.approval.bulk": "Decided on several posts",
    "workspace.approval.comment": "Commented on a post",
    "workspace.approval.revoke_link": "Revoked a review link",
    "workspace.approval.policy": "Changed the approval policy",
    "workspace.approval.add_reviewer": "Added a reviewer",
    "workspace.settings": "Changed the workspace settings",
    "workspace.end_agency": "Ended the agency's management of this workspace",
    "workspace.agency.create": "Created a client workspace",
    "workspace.agency.assign_staff": "Changed who works on a client",
    "workspace.agency.set_mode": "Changed a client's mode",
    "workspace.agency.end": "Stopped managing a client",
    "workspace.agency.invite_existing": "Invited a business to be managed",
    "workspace.channels.send_connect_link": "Sent a link to connect an account",
    "workspace.api_tokens.create": "Created an API token",
    "workspace.api_tokens.revoke": "Revoked an API token",
    "workspace.webhooks.new": "Added a webhook endpoint",
    "workspace.webhooks.update": "Changed a webhook endpoint",
    "workspace.webhooks.enable": "Switched a webhook endpoint on",
    "workspace.webhooks.disable": "Switched a webhook endpoint off",
    "workspace.webhooks.delete": "Deleted a webhook endpoint",
    "workspace.webhooks.send_test": "Sent a test webhook event",
    "workspace.webhooks.reveal_secret": "Revealed a webhook signing secret",
    "workspace.webhooks.rotate_secret": "Rotated a webhook signing secret",
    "workspace.webhooks.replay": "Resent a webhook delivery",
    "workspace.team.invite": "Invited someone",
    "workspace.team.revoke": "Withdrew an invitation",
    "workspace.team.change_role": "Changed a member's role",
    "workspace.team.remove": "Removed a member",
    "workspace.channels.add_sandbox": "Connected a channel",
    "workspace.channels.reconnect": "Reconnected a channel",
    "workspace.channels.mastodon_finish": "Connected a channel",
    "workspace.channels.bluesky": "Connected a channel",
    "workspace.channels.oauth_finish": "Connected a channel",
    "workspace.channels.oauth_pick": "Connected channels",
    "workspace.billing.checkout": "Chose a plan",
    "workspace.billing.checkout_return": "Billing changed",
    "workspace.billing.portal": "Opened the billing portal",
    "workspace.media.upload": "Uploaded media",
    "workspace.media.from_url": "Asked to add media from a URL",
    "workspace.media.alt": "Changed a file's alt text",
}


def init_app(_app: Flask) -> None:
    for name, listener in (("after_flush", _note_flush), ("after_commit", _note_commit), ("after_rollback", _forget)):
        if not event.contains(so.Session, name, listener):  # one set of listeners however many apps are made
            event.listen(so.Session, name, listener)


def _note_flush(session: so.Session, _context: Any) -> None:
    if session.info.get("tenant_id") is not None and (session.new or session.dirty or session.deleted):
        session.info["audit_pending"] = True


def _note_commit(session: so.Session) -> None:
    if session.info.pop("audit_pending", False) and has_request_context():
        g.audit_changed = True


def _forget(session: so.Session) -> None:
    session.info.pop("audit_pending", None)


def kind_of(endpoint: str | None) -> str:
    return next((kind for prefix, kind in KIND_BY_ENDPOINT if (endpoint or "").startswith(prefix)), "other")


def note(detail: str) -> None:
    """Say in people's words what this request changed ("Ann Lee is now Admin"); its entry carries it."""
    if has_request_context():
        g.audit_detail = "; ".join(filter(None, (g.get("audit_detail"), detail)))


def describe(endpoint: str | None) -> str:
    if endpoint in ACTIONS:
        return ACTIONS[endpoint]
    return (endpoint or "change").removeprefix("workspace.").replace(".", ": ").replace("_", " ").capitalize()


def record(
    session: so.Session,
    workspace: Workspace,
    user_id: int,
    user_name: str,
    endpoint: str | None,
    path: str,
    action: str | None = None,
    kind: str | None = None,
) -> None:
    """One entry for a change just committed in `workspace` (the session is bound to it).

    `action` (and `kind`, one of KINDS) say what happened when there is no page endpoint to describe it
    (the API, the CLI).
    """
    session.add(
        AuditEntry(
            actor_id=user_id,
            actor_name=user_name,
            agency_id=workspace.agency_id,
            agency_name=workspace.agency_name,
            action=(action or describe(endpoint))[:200],
            kind=kind or kind_of(endpoint),
            detail=(g.pop("audit_detail", None) or None) if has_request_context() else None,
            path=path[:500],
        )
    )


def record_event(
    session: so.Session,
    tenant_id: int,
    *,
    actor_name: str,
    action: str,
    kind: str,
    detail: str | None = None,
    actor_id: int | None = None,
    path: str = "",
) -> None:
    """An entry for a change made outside a workspace page: "Stripe", a reviewer's link, an accepted invitation.

    `session` may be bound to `tenant_id` or be a system session (the entry names its tenant either way).
    """
    session.add(
        AuditEntry(
            tenant_id=tenant_id,
            actor_id=actor_id,
            actor_name=actor_name[:254],
            action=action[:200],
            kind=kind,
            detail=detail[:500] if detail else None,
            path=path[:500],
        )
    )


# -- reading


@dataclass(frozen=True)
class AuditRow:
    """One line of the log as the viewer and the CSV show it, whatever table it came from."""

    at: datetime  # UTC
    who: str
    agency: str | None  # set when agency staff made it for this (client) workspace
    kind: str
    action: str
    detail: str | None
    source: str  # "workspace"; "account" once sign-in events join
    ref: int  # the row's id in its source, to order entries made in the same instant


@dataclass(frozen=True)
class AuditFilter:
    who: str | None = None  # an actor's name, exactly as the log shows it
    kind: str | None = None
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive


# A source yields rows of the session's workspace matching the filter, newest first, at most `limit` (None: all).
Source = Callable[[so.Session, AuditFilter, int | None], Iterable[AuditRow]]


def workspace_rows(session: so.Session, where: AuditFilter, limit: int | None) -> Iterator[AuditRow]:
    """This table's entries (the session is bound to the workspace, so no other tenant's can appear)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if where.who:
        query = query.where(AuditEntry.actor_name == where.who)
    if where.kind:
        query = query.where(AuditEntry.kind == where.kind)
    if where.since:
        query = query.where(AuditEntry.created_at >= where.since)
    if where.until:
        query = query.where(AuditEntry.created_at < where.until)
    if limit is not None:
        query = query.limit(limit)
    else:
        query = query.execution_options(yield_per=500)  # the whole log, for the export: in batches
    for entry in session.scalars(query):
        yield AuditRow(
            at=entry.created_at,
            who=entry.actor_name,
            agency=entry.agency_name,
            kind=entry.kind,
            action=entry.action,
            detail=entry.detail,
            source="workspace",
            ref=entry.id,
        )


def account_rows(session: so.Session, where: AuditFilter, limit: int | None) -> Iterator[AuditRow]:
    """The members' sign-in and security events (log-ins, failed log-ins, 2FA changes...), kept per user.

    Only people who are members of this workspace now; a failed log-in naming no account belongs to nobody's log.
    """
    if where.kind not in (None, "", "security"):
        return
    members = sa.select(Membership.user_id).where(Membership.tenant_id == bound_tenant_id(session))
    query = (
        sa.select(AccountEvent, User.name)
        .join(User, User.id == AccountEvent.user_id)
        .where(AccountEvent.user_id.in_(members))
        .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
    )
    if where.who:
        query = query.where(User.name == where.who)
    if where.since:
        query = query.where(AccountEvent.at >= where.since)
    if where.until:
        query = query.where(AccountEvent.at < where.until)
    query = query.limit(limit) if limit is not None else query.execution_options(yield_per=500)
    for account_event, name in session.execute(query):
        yield AuditRow(
            at=account_event.at,
            who=name,
            agency=None,
            kind="security",
            action=label_of(account_event.kind),
            detail=f"from {account_event.ip}, {device_label(account_event.user_agent)}",
            source="account",
            ref=account_event.id,
        )


SOURCES: list[Source] = [workspace_rows, account_rows]


def listing(session: so.Session, where: AuditFilter, *, offset: int, limit: int) -> list[AuditRow]:
    """One page of the merged log, newest first."""
    merged = heapq.merge(*(src(session, where, offset + limit) for src in SOURCES), key=_newest_first)
    return list(itertools.islice(merged, offset, offset + limit))


def stream(session: so.Session, where: AuditFilter) -> Iterator[AuditRow]:
    """The whole filtered log, newest first, read in batches (for the CSV export)."""
    return heapq.merge(*(src(session, where, None) for src in SOURCES), key=_newest_first)


def _newest_first(row: AuditRow) -> tuple[float, str, int]:
    return (-row.at.timestamp(), row.source, -row.ref)


def actors(session: so.Session) -> list[str]:
    """Everyone who appears in this workspace's log, for the "who" filter."""
    logged = set(session.scalars(sa.select(AuditEntry.actor_name).distinct()))
    members = session.scalars(
        sa.select(User.name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == bound_tenant_id(session))
    )
    return sorted(logged | set(members))
