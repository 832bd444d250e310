"""What needs attention across an agency's clients: upcoming posts, approvals, failures, channels.

Cross-tenant by nature, so it reads in the system scope, limited to the client ids the caller may see
(`visible_clients`): an unassigned staff member's console never lists another client's posts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.approvals.models import ApprovalRequest, RequestStatus
from saas.channels.models import Channel, ChannelHealth
from saas.posts.models import Post, PostState, PostTarget, TargetState
from tenants.models import Membership, StaffAssignment, Tenant
from tenants.scoping import bound_tenant_id, system_session

UPCOMING_DAYS = 7


@dataclass(frozen=True)
class Item:
    client_id: int
    post_id: int | None
    text: str
    when: datetime | None  # UTC: the post's time, or since when it has been waiting
    detail: str = ""


@dataclass
class Overview:
    upcoming: list[Item] = field(default_factory=list)
    awaiting_approval: list[Item] = field(default_factory=list)
    changes_requested: list[Item] = field(default_factory=list)
    failed: list[Item] = field(default_factory=list)
    reconnect: list[Item] = field(default_factory=list)


def visible_clients(session: so.Session, user_id: int) -> list[Tenant]:
    """The clients of the agency (`session` is bound to it) this member may work in: all for owners and
    admins, else the ones they are assigned to."""
    agency_id = bound_tenant_id(session)
    role = session.scalar(sa.select(Membership.role).where(Membership.user_id == user_id))
    if role is None:
        return []
    query = sa.select(Tenant).where(Tenant.managed_by_id == agency_id).order_by(sa.func.lower(Tenant.name))
    if not role.manages_team:
        assigned = sa.select(StaffAssignment.client_id).where(StaffAssignment.user_id == user_id)
        query = query.where(Tenant.id.in_(assigned))
    return list(session.scalars(query))


def overview(client_ids: list[int], now: datetime | None = None) -> Overview:
    """Everything in the listed clients that a person should look at, oldest or soonest first."""
    now = now or datetime.now(UTC)
    result = Overview()
    if not client_ids:
        return result
    with system_session() as session:
        for post in session.scalars(
            sa.select(Post)
            .where(
                Post.tenant_id.in_(client_ids),
                Post.state.in_([PostState.SCHEDULED, PostState.IN_REVIEW, PostState.APPROVED]),
                Post.scheduled_at.between(now, now + timedelta(days=UPCOMING_DAYS)),
            )
            .order_by(Post.scheduled_at)
            .limit(200)
        ):
            result.upcoming.append(Item(post.tenant_id, post.id, post.text, post.scheduled_at, post.state.value))
        for request, post in session.execute(
            sa.select(ApprovalRequest, Post)
            .join(Post, sa.and_(Post.tenant_id == ApprovalRequest.tenant_id, Post.id == ApprovalRequest.post_id))
            .where(
                ApprovalRequest.tenant_id.in_(client_ids),
                ApprovalRequest.status.in_([RequestStatus.PENDING, RequestStatus.CHANGES_REQUESTED]),
            )
            .order_by(ApprovalRequest.created_at)
        ):
            if request.status is RequestStatus.PENDING:
                result.awaiting_approval.append(
                    Item(post.tenant_id, post.id, post.text, request.created_at, request.step_name)
                )
            else:
                result.changes_requested.append(Item(post.tenant_id, post.id, post.text, request.decided_at))
        for target, post, channel in session.execute(
            sa.select(PostTarget, Post, Channel)
            .join(Post, sa.and_(Post.tenant_id == PostTarget.tenant_id, Post.id == PostTarget.post_id))
            .join(Channel, sa.and_(Channel.tenant_id == PostTarget.tenant_id, Channel.id == PostTarget.channel_id))
            .where(
                PostTarget.tenant_id.in_(client_ids),
                PostTarget.state.in_([TargetState.FAILED, TargetState.UNCONFIRMED, TargetState.BLOCKED]),
            )
            .order_by(PostTarget.updated_at.desc())
            .limit(200)
        ):
            result.failed.append(
                Item(
                    post.tenant_id,
                    post.id,
                    post.text,
                    target.scheduled_at,
                    f"@{channel.handle}: {target.state.label}. {target.last_error or ''}".strip(),
                )
            )
        for channel in session.scalars(
            sa.select(Channel).where(Channel.tenant_id.in_(client_ids), Channel.health == ChannelHealth.NEEDS_RECONNECT)
        ):
            result.reconnect.append(
                Item(channel.tenant_id, None, f"@{channel.handle}", channel.health_changed_at, channel.network)
            )
    return result
