"""The app's side of billing: count what a workspace uses, and enforce its plan where people act and at dispatch.

`billing.lifecycle` decides; this module counts (channels, seats, posts this month live
in the app's tables) and applies the decision: `require` at the point of action
(connect a channel, invite a member, schedule a post) and `dispatch_problem` when
the dispatcher claims a target. When billing is not configured nothing is limited.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from billing import subscriptions as billing_subscriptions
from billing.gateway import Gateway, gateway_for
from billing.lifecycle import Action, BillingState, Usage, covered_tenants, state_for, states_for
from billing.plans import SEAT_ROLES
from billing.settings import BillingSettings
from billing.subscriptions import Change
from saas.channels.models import Channel
from saas.posts.models import Post, PostState, PostTarget, TargetState
from tenants.models import Invitation, Membership, Role, Tenant
from tenants.scoping import system_session

BILLING_HOLD = "billing"  # PostTarget.blocked_reason for targets held by billing
# Posts that took (or take) a place in the month's allowance: scheduled at some point and not withdrawn.
SEAT_TAKERS = tuple(Role(r) for r in SEAT_ROLES)
COUNTED_POST_STATES = (PostState.SCHEDULED, PostState.PUBLISHED, PostState.PARTIALLY_PUBLISHED, PostState.FAILED)


class LimitReached(Exception):
    """The plan does not allow this action now. The message says which limit and how to raise it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def utcnow() -> datetime:
    return datetime.now(UTC)


def settings() -> BillingSettings:
    return BillingSettings.from_config(current_app.config)


def gateway() -> Gateway | None:
    stripe = settings().stripe
    return gateway_for(stripe) if stripe is not None else None


def state(session: so.Session, tenant_id: int, now: datetime | None = None) -> BillingState:
    return state_for(session, tenant_id, settings(), now or utcnow())


# -- counting ---------------------------------------------------------------------------------------------------------


def month_bounds(moment: datetime, zone: str) -> tuple[datetime, datetime]:
    """The calendar month around `moment` in the workspace's zone, as UTC instants."""
    tz = zoneinfo.ZoneInfo(zone)
    local = moment.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.astimezone(UTC), end.astimezone(UTC)


def usage(session: so.Session, tenant_id: int, month_of: datetime | None = None) -> Usage:
    """What the workspace uses now; posts are those scheduled in the month of `month_of` (default: now)."""
    tenant = session.get_one(Tenant, tenant_id)
    start, end = month_bounds(month_of or utcnow(), tenant.timezone)
    channels = session.scalar(sa.select(sa.func.count(Channel.id)).where(Channel.tenant_id == tenant_id))
    members = session.scalar(
        sa.select(sa.func.count(Membership.id)).where(
            Membership.tenant_id == tenant_id, Membership.role.in_(SEAT_TAKERS)
        )
    )
    # An open invitation holds its seat: otherwise inviting ten people at once would beat the limit.
    invited = session.scalar(
        sa.select(sa.func.count(Invitation.id)).where(
            Invitation.tenant_id == tenant_id,
            Invitation.role.in_(SEAT_TAKERS),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )
    posts = session.scalar(_posts_in_month(tenant_id, start, end))
    return Usage(channels=channels or 0, seats=(members or 0) + (invited or 0), posts_per_month=posts or 0)


def _posts_in_month(tenant_id: int, start: datetime, end: datetime) -> sa.Select[tuple[int]]:
    """Count the posts that take a place in the allowance of the month [start, end)."""
    return sa.select(sa.func.count(Post.id)).where(
        Post.tenant_id == tenant_id,
        Post.state.in_(COUNTED_POST_STATES),
        Post.scheduled_at >= start,
        Post.scheduled_at < end,
    )


# -- at the point of action -------------------------------------------------------------------------------------------


def _lock(session: so.Session, tenant_id: int) -> None:
    """Serialise limit checks per workspace, so two requests at once cannot both take the last place."""
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("billing-limits"), tenant_id)))


def require(
    session: so.Session, tenant_id: int | None, action: Action, *, month_of: datetime | None = None, adding: int = 1
) -> None:
    """Raise LimitReached unless the plan allows `action` now. Scheduling also needs a workspace that may publish.

    `tenant_id` is the session's bound tenant; None (a session bound to none) is refused when billing is on.
    """
    if not settings().enabled:
        return
    if tenant_id is None:
        raise LookupError("a plan limit can only be checked for one workspace")
    current = state(session, tenant_id)
    if action is Action.SCHEDULE_POST:
        problem = current.publishing_problem(utcnow())
        if problem:
            raise LimitReached(problem)
    _lock(session, tenant_id)
    problem = current.limit_problem(action, usage(session, tenant_id, month_of), adding)
    if problem:
        raise LimitReached(problem)


def takes_seat(role: str) -> bool:
    return role in SEAT_ROLES


# -- at dispatch ------------------------------------------------------------------------------------------------------


def prepare_dispatch(session: so.Session, targets: Sequence[PostTarget]) -> None:
    """Read the billing state of every tenant among `targets` at once (a few statements, not a few per tenant)."""
    cache = _dispatch_cache(session)
    current = cache["settings"]
    if current.enabled:
        states = states_for(session, {t.tenant_id for t in targets}, current, utcnow())
        cache.update({("state", tenant_id): tenant_state for tenant_id, tenant_state in states.items()})


def _dispatch_cache(session: so.Session) -> dict[Any, Any]:
    """What one dispatcher pass has read about billing, kept in its session."""
    cache: dict[Any, Any] = session.info.setdefault("billing_dispatch_cache", {})
    if "settings" not in cache:
        cache["settings"] = settings()
    return cache


def dispatch_problem(target: PostTarget) -> str | None:
    """Why billing holds this claimed target back, or None. Cached per tenant for one dispatcher pass.

    Over-limit work that got scheduled anyway (a downgrade, a lapse) is held here: a channel beyond
    the plan's channel count (oldest channels keep publishing), a post beyond the month's allowance
    (earliest posts keep their places).
    """
    session = so.object_session(target)
    assert session is not None
    cache = _dispatch_cache(session)
    if not cache["settings"].enabled:
        return None
    key = ("state", target.tenant_id)
    if key not in cache:
        cache[key] = state(session, target.tenant_id)
    current: BillingState = cache[key]
    if not current.enabled:
        return None
    problem = current.publishing_problem(utcnow())
    if problem:
        return problem
    limits = current.plan.limits
    if limits.channels is not None:
        channels_key = ("channels", target.tenant_id)
        if channels_key not in cache:
            cache[channels_key] = _oldest_channels(session, target.tenant_id, limits.channels)
        allowed = cache[channels_key]
        if target.channel_id not in allowed:
            return (
                f"The {current.plan.name} plan includes {limits.channels} channels and this workspace has more, "
                f"so @{target.channel.handle} is paused. Remove a channel or change plan on the Billing page."
            )
    if limits.posts_per_month is not None:
        rank = _rank_in_month(session, target.post, target.tenant_id)
        if rank >= limits.posts_per_month:
            return (
                f"The {current.plan.name} plan includes {limits.posts_per_month} scheduled "
                f"post{'' if limits.posts_per_month == 1 else 's'} a month, "
                "and this post is beyond them. Change plan on the Billing page, then reschedule it."
            )
    return None


def _oldest_channels(session: so.Session, tenant_id: int, limit: int) -> set[int]:
    return set(
        session.scalars(
            sa.select(Channel.id).where(Channel.tenant_id == tenant_id).order_by(Channel.id).limit(limit)
        ).all()
    )


def _rank_in_month(session: so.Session, post: Post, tenant_id: int) -> int:
    """How many counted posts of the same month come before this one (0 for the first)."""
    assert post.scheduled_at is not None
    tenant = session.get_one(Tenant, tenant_id)
    start, end = month_bounds(post.scheduled_at, tenant.timezone)
    before = session.scalar(
        _posts_in_month(tenant_id, start, end).where(
            sa.tuple_(Post.scheduled_at, Post.id) < sa.tuple_(post.scheduled_at, post.id)
        )
    )
    return int(before or 0)


# -- agency billing


def sync_agency_quantity(agency_id: int) -> int | None:
    """After managed clients change: bill the agency for as many as it now manages (Stripe prorates)."""
    # Cross-tenant: a client's change bills its agency (and counts the agency's clients).
    with system_session() as session:
        quantity = billing_subscriptions.sync_agency_quantity(session, gateway(), agency_id)
        session.commit()
    return quantity


# -- when a subscription changes --------------------------------------------------------------------------------------

MISSED_WHILE_HELD = (
    "This post was due on {due} while publishing was paused for billing. Publishing is back on: "
    "reschedule it, or publish it now."
)


def release_billing_holds(session: so.Session, change: Change) -> int:
    """Once the payer may publish again, put held targets back, in the transaction that recorded the change.

    A held target whose time is still ahead is scheduled again; one whose time passed while held stays
    blocked and is offered for rescheduling: never all fired at once. Returns how many went back.
    """
    now = utcnow()
    if state(session, change.payer_tenant_id, now).publishing_problem(now):
        return 0
    from saas.posts.service import settle_post  # the posts service imports this module

    resumed = 0
    for tenant_id in covered_tenants(session, change.payer_tenant_id):
        held = session.scalars(
            sa.select(PostTarget)
            .where(
                PostTarget.tenant_id == tenant_id,
                PostTarget.state == TargetState.BLOCKED,
                PostTarget.blocked_reason == BILLING_HOLD,
            )
            .with_for_update()
        ).all()
        for target in held:
            if target.scheduled_at > now:
                target.state, target.due_at = TargetState.SCHEDULED, target.scheduled_at
                target.blocked_reason = target.last_error = None
                settle_post(target.post)
                resumed += 1
            else:
                target.last_error = MISSED_WHILE_HELD.format(due=f"{target.scheduled_at:%-d %b %Y, %H:%M} UTC")
    session.flush()
    return resumed
