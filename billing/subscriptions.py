"""A tenant's subscription: buying one (Checkout), managing it (Portal), and recording what Stripe says.

`apply_subscription` is the one writer of a subscription row from Stripe's data,
used by webhooks and by the Checkout return page alike; it keeps the newest state
(see `stripe_state_at`) whatever order the news arrives in.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import insert

from billing import plans as plan_keys
from billing.gateway import CheckoutSession, Gateway, from_timestamp
from billing.lifecycle import LIVE
from billing.models import Subscription, SubscriptionStatus
from billing.plans import Plan, plan_for_price
from billing.settings import BillingSettings
from tenants.models import Tenant, TenantKind

# Checkout refuses a trial ending sooner than this; a shorter remainder is simply not carried over.
MIN_CHECKOUT_TRIAL = timedelta(hours=49)


class BillingError(ValueError):
    """A billing request that cannot be made; the message is safe to show."""


@dataclasses.dataclass(frozen=True)
class Change:
    """What applying Stripe's news did to one payer's subscription."""

    payer_tenant_id: int
    before: str | None
    after: str


def locked_row(session: so.Session, tenant_id: int) -> Subscription | None:
    return session.scalar(sa.select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update())


def ensure_customer(session: so.Session, gateway: Gateway, tenant: Tenant, email: str | None) -> Subscription:
    """The tenant's row, with a Stripe customer (created once; the row lock stops a double click making two)."""
    row = locked_row(session, tenant.id)
    if row is None:
        # Two first clicks at once: one insert wins, the other finds its row (and waits for its lock).
        session.execute(
            insert(Subscription)
            .values(tenant_id=tenant.id, plan=plan_keys.TRIAL, quantity=1, cancel_at_period_end=False)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        row = locked_row(session, tenant.id)
        assert row is not None
    if row.stripe_customer_id is None:
        row.stripe_customer_id = gateway.create_customer(name=tenant.name, email=email, tenant_id=tenant.id)
        session.flush()
    return row


def managed_clients(session: so.Session, agency_id: int) -> int:
    """How many clients an agency is billed for: those it manages that do not pay for themselves."""
    clients = sa.select(Tenant.id).where(Tenant.managed_by_id == agency_id).scalar_subquery()
    paying = sa.select(Subscription.tenant_id).where(Subscription.status.in_(list(LIVE))).scalar_subquery()
    count = session.scalar(sa.select(sa.func.count(Tenant.id)).where(Tenant.id.in_(clients), Tenant.id.not_in(paying)))
    return int(count or 0)


def start_checkout(
    session: so.Session,
    gateway: Gateway,
    settings: BillingSettings,
    *,
    tenant_id: int,
    plan_key: str,
    email: str | None,
    success_url: str,
    cancel_url: str,
    now: datetime,
) -> CheckoutSession:
    """A Checkout session for `plan_key`; the tenant pays there, and Stripe tells us by webhook."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    plan = settings.plans.get(plan_key)
    if plan is None or not plan.purchasable or tenant.kind.value not in plan.for_kinds:
        raise BillingError("That plan is not available for this workspace.")
    row = ensure_customer(session, gateway, tenant, email)
    if row.status in LIVE and row.stripe_subscription_id:
        raise BillingError("This workspace already has a subscription. Change or cancel it in the billing portal.")
    assert plan.stripe_price_id is not None and row.stripe_customer_id is not None
    # Optionally carry the unused part of the free trial over, so choosing a plan early costs nothing yet.
    trial_end = tenant.created_at + settings.trial
    carry_trial = (
        settings.trial_carries_over and row.stripe_subscription_id is None and trial_end - now >= MIN_CHECKOUT_TRIAL
    )
    return gateway.create_checkout_session(
        customer_id=row.stripe_customer_id,
        price_id=plan.stripe_price_id,
        quantity=_quantity(session, tenant, plan),
        tenant_id=tenant.id,
        plan=plan.key,
        success_url=success_url,
        cancel_url=cancel_url,
        trial_end=trial_end if carry_trial else None,
    )


def _quantity(session: so.Session, tenant: Tenant, plan: Plan) -> int:
    if plan.per_managed_client and tenant.kind is TenantKind.AGENCY:
        return max(1, managed_clients(session, tenant.id))  # Stripe needs at least one
    return 1


def finish_checkout(
    session: so.Session,
    gateway: Gateway,
    settings: BillingSettings,
    *,
    tenant_id: int,
    checkout_id: str,
    now: datetime,
) -> Change | None:
    """Back from Checkout: apply the new subscription now instead of waiting for its webhook.

    LookupError when the session belongs to another tenant (the caller answers 404).
    """
    checkout = gateway.checkout_session(checkout_id)
    if checkout.get("client_reference_id") != str(tenant_id):
        raise LookupError("checkout session of another tenant")
    if checkout.get("status") != "complete" or not checkout.get("subscription"):
        return None
    return apply_fetched(session, gateway, settings, str(checkout["subscription"]), now)


def portal_url(session: so.Session, gateway: Gateway, *, tenant_id: int, return_url: str) -> str:
    row = session.scalar(sa.select(Subscription).where(Subscription.tenant_id == tenant_id))
    if row is None or row.stripe_customer_id is None:
        raise BillingError("Choose a plan first: the billing portal manages an existing subscription.")
    return gateway.create_portal_session(customer_id=row.stripe_customer_id, return_url=return_url)


# -- recording what Stripe says ---------------------------------------------------------------------------------------


def apply_fetched(
    session: so.Session, gateway: Gateway, settings: BillingSettings, subscription_id: str, now: datetime
) -> Change | None:
    """Fetch the subscription from Stripe and apply it: the truth, whatever events are still in flight.

    It is marked as of now plus the signature tolerance: any event created before the fetch is older than
    that (the tolerance already bounds how far our clock and Stripe's may differ), so it cannot overwrite it.
    """
    assert settings.stripe is not None
    fetched = gateway.subscription(subscription_id)
    return apply_subscription(
        session, settings, fetched, now + timedelta(seconds=settings.stripe.tolerance_seconds), now
    )


def apply_subscription(
    session: so.Session, settings: BillingSettings, obj: dict[str, Any], state_at: datetime, now: datetime
) -> Change | None:
    """Record the subscription `obj` (Stripe's JSON) as of `state_at`. None when it is no tenant's of ours."""
    row = _row_for(session, obj)
    if row is None:
        return None
    before = row.status.value if row.status else None
    if row.stripe_subscription_id not in (None, obj["id"]) and row.status in LIVE and obj["status"] not in LIVE:
        return Change(
            row.tenant_id, before, before or "none"
        )  # news of an older, ended subscription: keep the live one
    status = SubscriptionStatus(obj["status"])
    item = (obj.get("items") or {}).get("data", [{}])[0]
    price_id = (item.get("price") or {}).get("id")
    plan = plan_for_price(settings.plans, price_id)
    row.stripe_subscription_id = obj["id"]
    row.stripe_customer_id = row.stripe_customer_id or str(obj["customer"])
    row.stripe_item_id = item.get("id")
    row.stripe_price_id = price_id
    row.plan = plan.key if plan else (obj.get("metadata") or {}).get("plan", row.plan)
    row.quantity = int(item.get("quantity") or 1)
    row.trial_end = from_timestamp(obj.get("trial_end"))
    row.current_period_end = from_timestamp(item.get("current_period_end"))
    row.cancel_at = from_timestamp(obj.get("cancel_at"))
    row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    if status is SubscriptionStatus.PAST_DUE and row.status is not SubscriptionStatus.PAST_DUE:
        row.past_due_since = min(now, state_at)  # the grace period counts from when we learned it
    elif status is not SubscriptionStatus.PAST_DUE:
        row.past_due_since = None
    row.status = status
    row.stripe_state_at = state_at
    session.flush()
    return Change(row.tenant_id, before, status.value)


def is_newer(session: so.Session, obj: dict[str, Any], created: datetime) -> bool:
    """Whether an event created at `created` carries newer state than what we hold for its subscription."""
    row = _row_for(session, obj)
    return row is None or row.stripe_state_at is None or created > row.stripe_state_at


def _row_for(session: so.Session, obj: dict[str, Any]) -> Subscription | None:
    """Our row for Stripe's subscription: by its id, then the tenant named in its metadata, then its customer."""
    row = session.scalar(
        sa.select(Subscription).where(Subscription.stripe_subscription_id == obj["id"]).with_for_update()
    )
    if row is not None:
        return row
    tenant_id = (obj.get("metadata") or {}).get("tenant_id")
    if tenant_id and str(tenant_id).isdigit():
        row = locked_row(session, int(tenant_id))
        if row is not None and row.stripe_customer_id in (None, obj.get("customer")):
            return row
    return session.scalar(
        sa.select(Subscription).where(Subscription.stripe_customer_id == obj.get("customer")).with_for_update()
    )


# -- agency billing ---------------------------------------------------------------------------------------------------


def sync_agency_quantity(session: so.Session, gateway: Gateway | None, agency_id: int) -> int | None:
    """Make the agency's subscription quantity the number of clients it is billed for (Stripe prorates).

    Call after a managed client is created, removed, or starts or stops paying for itself.
    Returns the new quantity, or None when the agency has no subscription to change.
    """
    row = locked_row(session, agency_id)
    if row is None or row.stripe_subscription_id is None or row.stripe_item_id is None or row.status not in LIVE:
        return None
    quantity = max(1, managed_clients(session, agency_id))
    if quantity == row.quantity:
        return quantity
    if gateway is None:
        raise BillingError("Billing is not configured, so the agency's subscription cannot be changed.")
    gateway.set_quantity(subscription_id=row.stripe_subscription_id, item_id=row.stripe_item_id, quantity=quantity)
    row.quantity = quantity
    session.flush()
    return quantity
