"""Reminders: a daily digest to each approver with posts waiting, and a warning when a post's time is near
and it is not approved. Each is sent once (notification event keys), however often this runs."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas import mail
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalRequest, RequestStatus
from saas.notifications.service import admins, notify, sent_before
from saas.posts.models import Post
from saas.timezones import format_local
from tenants import agency
from tenants.models import Tenant, User
from tenants.scoping import system_session, tenant_session

WARN_BEFORE = timedelta(hours=24)


def tenants_with_open_requests() -> list[int]:
    with system_session() as session:  # finds which workspaces have anything to remind about
        return list(
            session.scalars(
                sa.select(ApprovalRequest.tenant_id)
                .where(ApprovalRequest.status.in_(approvals.OPEN))
                .distinct()
                .order_by(ApprovalRequest.tenant_id)
            )
        )


def send_reminders(now: datetime) -> int:
    """Digest and warnings for every workspace with open requests; returns how many notifications were new."""
    sent = 0
    for tenant_id in tenants_with_open_requests():
        with tenant_session(tenant_id) as session:
            sent += _digest(session, tenant_id, now) + _warnings(session, tenant_id, now)
            session.commit()
    return sent


def _open(session: so.Session, status: RequestStatus) -> list[tuple[ApprovalRequest, Post]]:
    return [
        (r, p)
        for r, p in session.execute(
            sa.select(ApprovalRequest, Post)
            .join(Post, Post.id == ApprovalRequest.post_id)
            .where(ApprovalRequest.status == status)
            .order_by(Post.scheduled_at.nulls_last(), Post.id)
        ).all()
    ]


def _queue_link(session: so.Session, tenant_id: int) -> str:
    return mail.link("workspace.approvals", slug=session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id)))


def _digest(session: so.Session, tenant_id: int, now: datetime) -> int:
    """Each approver with posts waiting gets one digest a day, with a fresh review link for exactly those posts."""
    by_user: dict[int, list[Post]] = {}
    for request, post in _open(session, RequestStatus.PENDING):
        for user_id in approvals.approvers(session, request.steps[request.step]):
            by_user.setdefault(user_id, []).append(post)
    event_key = f"approval-digest:{now:%Y-%m-%d}"  # at most one digest a day
    sent = 0
    for user_id, posts in sorted(by_user.items()):
        user = session.get(User, user_id)
        if user is None or sent_before(session, user_id, event_key):
            continue  # the link below is made only for a digest that is really sent
        lines = "\n".join(
            f"- “{p.text[:70]}”"
            + (f", planned for {format_local(p.scheduled_at, user.timezone)}" if p.scheduled_at else "")
            for p in posts
        )
        raw, _link = approvals.issue_link(session, user_id, [p.id for p in posts], None)
        count = len(posts)
        sent += len(
            notify(
                session,
                tenant_id=tenant_id,
                user_ids=[user_id],
                event_key=event_key,
                title=f"{count} post{'' if count == 1 else 's'} waiting for your approval",
                body=f"These posts wait for your approval:\n{lines}\n\nThe link opens them all: no login needed.",
                link=_queue_link(session, tenant_id),
                email_link=mail.link("review.page", token=raw),
            )
        )
    return sent


def _warnings(session: so.Session, tenant_id: int, now: datetime) -> int:
    sent = 0
    people = admins(session) + list(agency.staff_for_client(tenant_id))
    zone = session.scalar(sa.select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    for status in approvals.OPEN:
        for request, post in _open(session, status):
            if post.scheduled_at is None or not now < post.scheduled_at <= now + WARN_BEFORE:
                continue
            sent += len(
                notify(
                    session,
                    tenant_id=tenant_id,
                    user_ids=[post.author_id, request.submitted_by_id, *people],
                    event_key=f"approval-near:{request.id}",
                    title="A post goes out soon and is not approved",
                    body=(
                        f"“{post.text[:70]}” is planned for {format_local(post.scheduled_at, zone)} and is not "
                        "approved yet. Without approval it will not be published."
                    ),
                    link=mail.link(
                        "workspace.posts.detail",
                        slug=session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id)),
                        post_id=post.id,
                    ),
                )
            )
    return sent
