"""Stripe webhooks: verify, apply once, in any order.

- The signature is checked on the raw body, within the tolerance window, before anything is parsed
  (`Gateway.verify_event`); a bad one changes nothing.
- The event id is inserted into `stripe_events` in the caller's transaction, the one that applies the
  effect: a replay (or a concurrent duplicate, which waits on the unique key) finds it and does nothing.
- Order: a subscription event newer than the state we hold is applied as sent; anything older or as old,
  and every event that does not carry the subscription itself (invoices, Checkout), makes us fetch the
  subscription from Stripe and apply that, so late or early news always converges on Stripe's truth.
- Unknown event types are recorded and acknowledged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import insert

from billing.gateway import Gateway, from_timestamp
from billing.models import StripeEvent
from billing.settings import BillingSettings
from billing.subscriptions import Change, apply_fetched, apply_subscription, is_newer

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
    }
)
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"})
CHECKOUT_EVENTS = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})


@dataclasses.dataclass(frozen=True)
class Handled:
    event_id: str
    type: str
    outcome: str  # "applied", "fetched", "duplicate", "ignored", "not ours"
    change: Change | None = None


def handle_event(
    session: so.Session,
    gateway: Gateway,
    settings: BillingSettings,
    payload: bytes,
    signature_header: str | None,
    now: datetime,
    on_change: Callable[[so.Session, Change], None],
) -> Handled:
    """Verify and apply one delivery. BadSignature propagates (answer 400). The caller commits.

    `on_change` runs in the same transaction for every subscription the event touched
    (the app releases or keeps posts held for billing there).
    """
    event = gateway.verify_event(payload, signature_header)
    event_id, type_ = str(event["id"]), str(event["type"])
    created = from_timestamp(event["created"]) or now
    obj: dict[str, Any] = event["data"]["object"]
    recorded = session.execute(
        insert(StripeEvent)
        .values(
            id=event_id, type=type_, created=created, stripe_subscription_id=_subscription_id(type_, obj), outcome="new"
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.id)
    ).first()
    if recorded is None:
        return Handled(event_id, type_, "duplicate")
    outcome, change = _apply(session, gateway, settings, type_, obj, created, now)
    if change is not None:
        on_change(session, change)
    session.get_one(StripeEvent, event_id).outcome = outcome
    session.flush()
    return Handled(event_id, type_, outcome, change)


def _apply(
    session: so.Session,
    gateway: Gateway,
    settings: BillingSettings,
    type_: str,
    obj: dict[str, Any],
    created: datetime,
    now: datetime,
) -> tuple[str, Change | None]:
    subscription_id = _subscription_id(type_, obj)
    if subscription_id is None:
        return "ignored", None
    if type_ in SUBSCRIPTION_EVENTS and is_newer(session, obj, created):
        change = apply_subscription(session, settings, obj, created, now)
        return ("applied" if change else "not ours"), change
    change = apply_fetched(session, gateway, settings, subscription_id, now)
    return ("fetched" if change else "not ours"), change


def _subscription_id(type_: str, obj: dict[str, Any]) -> str | None:
    """The subscription an event is about, for the types we act on; None for the rest."""
    if type_ in SUBSCRIPTION_EVENTS:
        return str(obj["id"])
    if type_ in INVOICE_EVENTS:
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        found = details.get("subscription")
        return str(found) if found else None
    if type_ in CHECKOUT_EVENTS and obj.get("mode") == "subscription" and obj.get("subscription"):
        return str(obj["subscription"])
    return None
