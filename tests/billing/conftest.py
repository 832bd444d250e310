"""Billing fixtures: the app served over HTTP (Stripe's webhooks need an address), FakeStripe, and shortcuts.

`stripe` switches billing on for one test: the app's Stripe settings point at a fresh
FakeStripe whose webhooks go to the live app, so stripe-python and the signature checks
run for real. Without it, billing stays off, as it is for the rest of the suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from billing.models import StripeEvent, Subscription
from tenants import system_session
from tenants.models import Tenant
from tests.conftest import remember_secret
from tests.factories import app_context
from tests.fakes.stripe import FakeStripe
from tests.live_server import serving
from tests.publishing.conftest import network, pipeline  # noqa: F401  (fixtures reused here)

PRICES = {"STRIPE_PRICE_PRO": "price_pro", "STRIPE_PRICE_AGENCY": "price_agency"}


@pytest.fixture(scope="session")
def webhook_base(app: Flask) -> Iterator[str]:
    """The session's app on 127.0.0.1 (a free port), where FakeStripe sends webhooks."""
    with serving(app, "billing-live-server") as base_url:
        yield base_url


@contextmanager
def fake_stripe_for(app: Flask, app_base_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """A FakeStripe sending webhooks to the app at `app_base_url`, with the app's billing pointed at it."""
    fake = FakeStripe(webhook_url=f"{app_base_url}/webhooks/stripe").start()
    remember_secret(fake.secret_key, fake.webhook_secret)  # never to be logged
    settings = {
        "BILLING_ENABLED": True,
        "STRIPE_SECRET_KEY": fake.secret_key,
        "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
        "STRIPE_API_BASE": fake.base_url,
        **PRICES,
    }
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    try:
        yield fake
    finally:
        fake.wait_delivered()  # nothing may land after the tables are emptied for the next test
        fake.stop()


@pytest.fixture
def stripe(app: Flask, webhook_base: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with fake_stripe_for(app, webhook_base, monkeypatch) as fake:
        yield fake


def subscribe(client: Any, stripe: FakeStripe, tenant: Tenant, plan: str = "pro", *, back: bool = True) -> str:
    """Choose `plan` on the billing page, pay on the fake Checkout page, come back. Returns the subscription id."""
    response = client.submit(f"/w/{tenant.slug}/billing/checkout", {"plan": plan}, page=f"/w/{tenant.slug}/billing")
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = re.search(r"/checkout/(cs_test_\w+)", response.headers["Location"]).group(1)
    success = stripe.pay_checkout(session_id)
    if back:
        path = success.removeprefix("http://localhost")
        assert client.get(path).status_code == 302
    stripe.wait_delivered()
    return stripe.checkout_sessions[session_id]["subscription"]


def subscription_row(tenant_id: int) -> Subscription | None:
    with app_context(), system_session() as session:
        return session.scalar(sa.select(Subscription).where(Subscription.tenant_id == tenant_id))


def events_recorded() -> list[tuple[str, str]]:
    with app_context(), system_session() as session:
        return [tuple(r) for r in session.execute(sa.select(StripeEvent.id, StripeEvent.outcome))]
