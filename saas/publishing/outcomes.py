"""Telling people about a target that needs them: failed, unconfirmed, blocked, channel to reconnect."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas import entitlements, mail
from saas.channels.models import ChannelHealth
from saas.notifications.service import admins, notify
from saas.posts.models import PostTarget, TargetState
from saas.publishing.policy import APPROVAL_HOLD
from tenants import agency
from tenants.models import Tenant
from tenants.scoping import tenant_session

HEADLINES = {
    TargetState.FAILED: "A post failed to publish to @{handle}",
    TargetState.UNCONFIRMED: "We could not confirm a post to @{handle}",
    TargetState.BLOCKED: "A post could not go out to @{handle}",
}


def post_link(session: so.Session, tenant_id: int, post_id: int) -> str:
    slug = session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id))
    return mail.link("workspace.posts.detail", slug=slug, post_id=post_id)


def tell_people(tenant_id: int, target_id: int) -> None:
    """Notify the author and the tenant's admins about this target's final state, once per event."""
    with tenant_session(tenant_id) as session:
        target = session.get(PostTarget, target_id)
        if target is None or target.state not in HEADLINES:
            return
        channel = target.channel
        recipients = [target.post.author_id, *admins(session)]
        link = post_link(session, tenant_id, target.post_id)
        if target.state is TargetState.BLOCKED and channel.health is not ChannelHealth.OK:
            # One message for the channel, not one per post waiting on it.
            changed = channel.health_changed_at.isoformat() if channel.health_changed_at else "unknown"
            event_key = f"channel:{channel.id}:{channel.health.value}:{changed}"
            title = f"Reconnect @{channel.handle} to keep publishing"
            link = mail.link(
                "workspace.channels.index", slug=session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id))
            )
        elif target.state is TargetState.BLOCKED and target.blocked_reason == entitlements.BILLING_HOLD:
            # One message per lapse of the subscription, not one per post it holds back.
            event_key = f"billing-hold:{entitlements.state(session, tenant_id).episode}"
            title = "Publishing is paused for billing"
            link = mail.link(
                "workspace.billing.index", slug=session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id))
            )
        elif target.state is TargetState.BLOCKED and target.blocked_reason == APPROVAL_HOLD:
            # One message per post and revision, to the client's people and the agency that manages it.
            event_key = f"approval-missing:{target.post_id}:{target.post.revision}"
            title = "A post was not published: approval missing"
            recipients += list(agency.staff_for_client(tenant_id))
        else:
            event_key = f"target:{target.id}:{target.state.value}:{target.attempt_count}"
            title = HEADLINES[target.state].format(handle=channel.handle)
        notify(
            session,
            tenant_id=tenant_id,
            user_ids=recipients,
            event_key=event_key,
            title=title,
            body=target.last_error or title,
            link=link,
        )
        session.commit()
