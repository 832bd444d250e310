"""Who pays for a workspace, on which plan, and whether it may publish and grow.

The one place that turns a subscription's state into "may publish?" and "may add
one more?". Pure decisions on plain values (`BillingState`, `Usage`) plus one
reader (`state_for`) of the tenant and subscription rows; counting what a
workspace uses is the app's job (it owns channels, posts and members).

Policy (DESIGN §7, reliability §4):
  trialing, active                 publish
  past_due                         publish for the grace period (banner, email), then block
  unpaid, canceled, paused,
  incomplete, incomplete_expired   block (posts are kept, marked blocked, never deleted)
  no subscription                  the free trial from the tenant's creation; blocked once it ends
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.models import Subscription, SubscriptionStatus
from billing.plans import AGENCY, LIMIT_NAMES, TRIAL, Plan
from billing.settings import BillingSettings
from tenants.models import Tenant, TenantKind

# Statuses in which a subscription is alive enough to be the one that covers a workspace.
LIVE = frozenset(
    {
        SubscriptionStatus.TRIALING,
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.PAST_DUE,
        SubscriptionStatus.UNPAID,
        SubscriptionStatus.PAUSED,
    }  # fmt: skip
)
BILLING_PAGE_HINT = "Open Billing in this workspace's menu"


class Action(enum.StrEnum):
    CONNECT_CHANNEL = "channels"
    ADD_SEAT = "seats"
    SCHEDULE_POST = "posts_per_month"


@dataclasses.dataclass(frozen=True)
class Usage:
    """What a workspace uses now, against each limit."""

    channels: int
    seats: int
    posts_per_month: int

    def of(self, limit: str) -> int:
        value: int = getattr(self, limit)
        return value


@dataclasses.dataclass(frozen=True)
class BillingState:
    """A workspace's billing as its pages and checks need it. Plain values: safe across sessions."""

    enabled: bool
    tenant_id: int
    payer_tenant_id: int  # the workspace itself, or the agency that manages it
    payer_name: str
    plan: Plan
    status: str  # a SubscriptionStatus value, or "trial" / "trial_ended" without a Stripe subscription
    trial_end: datetime | None
    current_period_end: datetime | None
    cancel_at: datetime | None
    past_due_since: datetime | None
    grace_ends_at: datetime | None
    stripe_customer_id: str | None
    quantity: int

    @property
    def covered_by_agency(self) -> bool:
        return self.payer_tenant_id != self.tenant_id

    @property
    def has_subscription(self) -> bool:
        return self.status not in ("trial", "trial_ended")

    @property
    def episode(self) -> str:
        """Names this lapse, so people are told once per lapse however many posts it blocks."""
        since = self.past_due_since or self.cancel_at or self.trial_end or self.current_period_end
        return f"{self.payer_tenant_id}:{self.status}:{since.isoformat() if since else 'none'}"

    def in_grace(self, now: datetime) -> bool:
        return (
            self.status == SubscriptionStatus.PAST_DUE and self.grace_ends_at is not None and now < self.grace_ends_at
        )

    def publishing_problem(self, now: datetime) -> str | None:
        """None while the workspace may publish; otherwise why not and what to do, for the user."""
        if not self.enabled:
            return None
        who = f"{self.payer_name}'s subscription" if self.covered_by_agency else "This workspace's subscription"
        fix = (
            f"Ask {self.payer_name} to update their billing."
            if self.covered_by_agency
            else f"{BILLING_PAGE_HINT} to choose a plan or update the payment method."
        )
        status = self.status
        if status in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, "trial"):
            return None
        if status == SubscriptionStatus.PAST_DUE:
            if self.in_grace(now):
                return None
            ended = f" on {_day(self.grace_ends_at)}" if self.grace_ends_at else ""
            return f"Publishing is paused for billing: a payment failed and the grace period ended{ended}. {fix}"
        if status == "trial_ended":
            return f"Publishing is paused for billing: the free trial ended on {_day(self.trial_end)}. {fix}"
        reason = {
            SubscriptionStatus.UNPAID: f"{who} is unpaid",
            SubscriptionStatus.CANCELED: f"{who} was canceled",
            SubscriptionStatus.PAUSED: f"{who} is paused",
            SubscriptionStatus.INCOMPLETE: f"{who} is waiting for its first payment",
            SubscriptionStatus.INCOMPLETE_EXPIRED: f"{who} was never paid for",
        }.get(SubscriptionStatus(status), f"{who} is {status}")
        return f"Publishing is paused for billing: {reason}. {fix}"

    def limit_problem(self, action: Action, usage: Usage, adding: int = 1) -> str | None:
        """None if `adding` more fits the plan's limit; otherwise which limit, and how to raise it."""
        if not self.enabled:
            return None
        limit = self.plan.limits.of(action.value)
        if limit is None or usage.of(action.value) + adding <= limit:
            return None
        plural, singular = LIMIT_NAMES[action.value]
        used = usage.of(action.value)
        what = f"{limit} {singular if limit == 1 else plural}"
        return f"The {self.plan.name} plan includes {what}, and this workspace has used {used}. " + self._how_to_raise()

    def _how_to_raise(self) -> str:
        if self.covered_by_agency:
            return f"Ask {self.payer_name} about a larger plan, or {BILLING_PAGE_HINT.lower()} to subscribe yourself."
        if self.plan.key == TRIAL:
            return f"{BILLING_PAGE_HINT} and choose a paid plan to raise it."
        return f"{BILLING_PAGE_HINT} to change plan, or remove something first."


def _day(moment: datetime | None) -> str:
    return f"{moment:%-d %b %Y} (UTC)" if moment else "an earlier date"


def _trial_end(tenant: Tenant, settings: BillingSettings) -> datetime:
    return tenant.created_at + settings.trial


def state_for(session: so.Session, tenant_id: int, settings: BillingSettings, now: datetime) -> BillingState:
    """The billing state of `tenant_id`: its own subscription, its agency's, or its free trial.

    A managed client is covered by its agency unless it holds a live subscription of its own.
    Reads only `tenants` and `subscriptions` (global tables), so any session may call it.
    """
    states = states_for(session, [tenant_id], settings, now)
    if tenant_id not in states:
        raise LookupError(f"no tenant {tenant_id}")
    return states[tenant_id]


def states_for(
    session: so.Session, tenant_ids: Iterable[int], settings: BillingSettings, now: datetime
) -> dict[int, BillingState]:
    """`state_for` of many tenants in three statements, however many there are (the dispatcher's case)."""
    tenants = session.scalars(sa.select(Tenant).where(Tenant.id.in_(set(tenant_ids)))).all()
    agency_ids = {t.managed_by_id for t in tenants if t.kind is TenantKind.CLIENT and t.managed_by_id}
    agencies = {a.id: a for a in session.scalars(sa.select(Tenant).where(Tenant.id.in_(agency_ids)))}
    subscriptions = {
        s.tenant_id: s
        for s in session.scalars(
            sa.select(Subscription).where(Subscription.tenant_id.in_({t.id for t in tenants} | agency_ids))
        )
    }
    states = {}
    for tenant in tenants:
        payer, subscription = tenant, subscriptions.get(tenant.id)
        agency = agencies.get(tenant.managed_by_id) if tenant.managed_by_id else None
        if agency is not None and tenant.kind is TenantKind.CLIENT and not _is_live(subscription):
            payer, subscription = agency, subscriptions.get(agency.id)
        states[tenant.id] = _state(tenant.id, payer, subscription, settings, now)
    return states


def _is_live(subscription: Subscription | None) -> bool:
    return subscription is not None and subscription.status in LIVE


def _state(
    tenant_id: int, payer: Tenant, sub: Subscription | None, settings: BillingSettings, now: datetime
) -> BillingState:
    plans = settings.plans
    trial_end = _trial_end(payer, settings)
    if sub is None or sub.stripe_subscription_id is None or sub.status is None:
        return BillingState(
            enabled=settings.enabled,
            tenant_id=tenant_id,
            payer_tenant_id=payer.id,
            payer_name=payer.name,
            plan=plans[TRIAL],
            status="trial" if now < trial_end else "trial_ended",
            trial_end=trial_end,
            current_period_end=None,
            cancel_at=None,
            past_due_since=None,
            grace_ends_at=None,
            stripe_customer_id=sub.stripe_customer_id if sub else None,
            quantity=1,
        )
    assert sub is not None and sub.status is not None
    plan = plans.get(sub.plan) or plans[AGENCY if payer.kind is TenantKind.AGENCY else TRIAL]
    grace_ends_at = sub.past_due_since + settings.grace if sub.past_due_since else None
    return BillingState(
        enabled=settings.enabled,
        tenant_id=tenant_id,
        payer_tenant_id=payer.id,
        payer_name=payer.name,
        plan=plan,
        status=sub.status.value,
        trial_end=sub.trial_end,
        current_period_end=sub.current_period_end,
        cancel_at=sub.cancel_at,
        past_due_since=sub.past_due_since,
        grace_ends_at=grace_ends_at,
        stripe_customer_id=sub.stripe_customer_id,
        quantity=sub.quantity,
    )


def covered_tenants(session: so.Session, payer_tenant_id: int) -> list[int]:
    """The workspaces whose publishing follows this payer's subscription: itself, and clients without their own."""
    clients = session.scalars(sa.select(Tenant.id).where(Tenant.managed_by_id == payer_tenant_id)).all()
    paying_themselves = set(
        session.scalars(
            sa.select(Subscription.tenant_id).where(
                Subscription.tenant_id.in_(clients), Subscription.status.in_(list(LIVE))
            )
        ).all()
    )
    return [payer_tenant_id, *(c for c in clients if c not in paying_themselves)]
