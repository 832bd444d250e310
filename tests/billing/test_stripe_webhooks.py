"""POST /webhooks/stripe: signatures on the raw body, each event once, any order, unknown types acknowledged."""

from __future__ import annotations

import json
import time

import httpx

from billing.models import SubscriptionStatus
from tests.billing.conftest import events_recorded, subscribe, subscription_row
from tests.factories import PASSWORD, make_workspace
from tests.fakes.stripe import sign


def _subscribed(client, stripe):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    sub_id = subscribe(client, stripe, tenant)
    return tenant, owner, sub_id


def test_bad_missing_or_stale_signatures_are_refused_and_change_nothing(client, stripe, webhook_base):
    tenant, _owner, sub_id = _subscribed(client, stripe)
    event = stripe.set_status(sub_id, "unpaid")
    stripe.wait_delivered()
    # (That delivery was genuine; forge a newer one we can replay with broken signatures.)
    forged = {**event, "id": "evt_forged", "created": event["created"] + 5,
              "data": {"object": {**event["data"]["object"], "status": "canceled"}}}  # fmt: skip
    before_events, before_row = events_recorded(), subscription_row(tenant.id)

    assert stripe.deliver(forged, signature="bad") == [400]
    assert stripe.deliver(forged, signature="missing") == [400]
    assert stripe.deliver(forged, signature="stale") == [400]  # an hour old: outside the 300 s window

    assert events_recorded() == before_events
    after = subscription_row(tenant.id)
    assert (after.status, after.stripe_state_at) == (before_row.status, before_row.stripe_state_at)
    assert after.status is SubscriptionStatus.UNPAID


def test_the_signature_covers_the_raw_bytes_not_the_json(client, stripe, webhook_base):
    tenant, _owner, sub_id = _subscribed(client, stripe)
    assert subscription_row(tenant.id).status is SubscriptionStatus.ACTIVE
    stripe.hold = True
    event = stripe.set_status(sub_id, "unpaid")
    raw = json.dumps(event, indent=2)
    header = sign(raw, stripe.webhook_secret, int(time.time()))
    reserialised = json.dumps(json.loads(raw), separators=(",", ":"))  # same JSON, other bytes

    response = httpx.post(f"{webhook_base}/webhooks/stripe", content=reserialised, headers={"Stripe-Signature": header})
    assert response.status_code == 400
    assert subscription_row(tenant.id).status is SubscriptionStatus.ACTIVE

    response = httpx.post(f"{webhook_base}/webhooks/stripe", content=raw, headers={"Stripe-Signature": header})
    assert response.status_code == 200
    assert subscription_row(tenant.id).status is SubscriptionStatus.UNPAID


def test_the_same_event_ten_times_has_one_effect(client, stripe, outbox):
    tenant, owner, sub_id = _subscribed(client, stripe)
    stripe.hold = True
    stripe.decline_cards(subscription_row(tenant.id).stripe_customer_id)
    stripe.renew(sub_id)  # the card is declined: past_due
    [went_past_due] = [e for e in stripe.held if e["type"] == "customer.subscription.updated"]

    assert stripe.deliver(went_past_due, times=10) == [200] * 10

    row = subscription_row(tenant.id)
    assert row.status is SubscriptionStatus.PAST_DUE
    assert [e[0] for e in events_recorded()].count(went_past_due["id"]) == 1
    failed = [m for m in outbox.to(owner.email) if "payment failed" in m["Subject"].lower()]
    assert len(failed) == 1, [m["Subject"] for m in outbox.to(owner.email)]
    assert "Publishing continues until" in failed[0].get_content()


def test_invoice_paid_before_subscription_created_converges(client, stripe):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    stripe.hold = True
    sub_id = subscribe(client, stripe, tenant, back=False)  # no return page: only webhooks tell us
    assert subscription_row(tenant.id).status is None
    by_type = {e["type"]: e for e in stripe.held}

    # Paid invoice first: it carries no subscription state, so the app fetches the subscription.
    order = [by_type["invoice.paid"], by_type["customer.subscription.created"], by_type["checkout.session.completed"]]
    assert stripe.release_held(order) == [200, 200, 200]

    row = subscription_row(tenant.id)
    assert (row.stripe_subscription_id, row.plan) == (sub_id, "pro")
    assert row.status == stripe.subscriptions[sub_id]["status"] == "active"
    outcomes = dict(events_recorded())
    assert outcomes[by_type["invoice.paid"]["id"]] == "fetched"
    # The creation event is older than the fetched state: it is checked against Stripe, not applied blindly.
    assert outcomes[by_type["customer.subscription.created"]["id"]] == "fetched"


def test_an_old_update_arriving_late_does_not_undo_a_newer_one(client, stripe):
    tenant, _owner, sub_id = _subscribed(client, stripe)
    stripe.hold = True
    older = stripe.set_status(sub_id, "past_due")
    newer = stripe.set_status(sub_id, "active")
    newer = {**newer, "created": older["created"] + 1}  # Stripe's seconds: make the order unambiguous

    assert stripe.release_held([newer, older]) == [200, 200]

    row = subscription_row(tenant.id)
    assert row.status is SubscriptionStatus.ACTIVE
    assert row.past_due_since is None


def test_unknown_event_types_are_acknowledged_and_ignored(client, stripe):
    tenant, _owner, _sub_id = _subscribed(client, stripe)
    before = subscription_row(tenant.id)
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "api_version": "2026-02-25.clover",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_x", "object": "customer"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.tax_id.created",
    }
    assert stripe.deliver(event) == [200]
    assert ("evt_unknown_1", "ignored") in events_recorded()
    assert subscription_row(tenant.id).stripe_state_at == before.stripe_state_at
