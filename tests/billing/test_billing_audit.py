"""Billing changes in the audit log: the owner's choice of plan, and Stripe's own changes with "Stripe" as who."""

from __future__ import annotations

import csv
import io

from tests.billing.conftest import subscribe
from tests.factories import PASSWORD, make_workspace


def test_a_subscription_started_by_stripe_webhook_is_logged_as_stripe(client, stripe):
    tenant, owner = make_workspace(name="Ledger Bakery")
    client.log_in(owner.email, PASSWORD)

    subscribe(client, stripe, tenant, back=False)  # only the webhook tells us

    export = client.get(f"/w/{tenant.slug}/audit.csv?kind=billing").get_data(as_text=True)
    rows = [(r["who"], r["action"], r["detail"]) for r in csv.DictReader(io.StringIO(export))]
    assert ("Stripe", "Subscription changed", "Status none → active") in rows
    assert (owner.name, "Chose a plan", "Went to checkout for the pro plan") in rows
    page = client.get(f"/w/{tenant.slug}/audit?who=Stripe").get_data(as_text=True)
    assert "Subscription changed: Status none → active" in page
