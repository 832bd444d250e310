"""The audit log: every change made in a workspace, by whom, and for agency staff "staff X for client Y".

A change is a request in a workspace whose database work was committed. Session events note the
commit; the workspace blueprint's after-request hook writes one entry for the request. Reading a page
writes nothing, and an action refused and rolled back writes nothing either.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, g, has_request_context
from sqlalchemy import event

from tenants.models import AuditEntry
from tenants.service import Workspace

# How entries read, by endpoint; any other change reads as its endpoint's name.
ACTIONS = {
    "workspace.posts.new": "Created a post",
    "workspace.posts.edit": "Edited a post",
    "workspace.posts.post_action": "Changed a post",
    "workspace.posts.move": "Rescheduled a post",
    "workspace.posts.target_action": "Acted on a post's channel",
    "workspace.posts.reschedule": "Rescheduled a held post",
    "workspace.approval.submit": "Sent a post for approval",
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
) -> None:
    """One entry for a change just committed in `workspace` (the session is bound to it).

    `action` says what happened in words when there is no page endpoint to describe it (the API, the CLI).
    """
    session.add(
        AuditEntry(
            actor_id=user_id,
            actor_name=user_name,
            agency_id=workspace.agency_id,
            agency_name=workspace.agency_name,
            action=(action or describe(endpoint))[:200],
            path=path[:500],
        )
    )


def entries(session: so.Session, limit: int = 200) -> list[AuditEntry]:
    return list(session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
