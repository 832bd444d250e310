"""A new business signs up, chooses Pro, pays on the (fake) Stripe Checkout page and is back on Billing: Pro, active."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.billing.conftest import fake_stripe_for
from tests.fakes.stripe import FakeStripe

EMAIL = "mary@example.com"
PASSWORD = "copper-kettle-orchard-58"


@pytest.fixture
def stripe(app: Flask, live_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with fake_stripe_for(app, live_server, monkeypatch) as fake:
        yield fake


def test_sign_up_choose_pro_pay_and_see_it_active(
    app: Flask, live_server: str, new_page: Callable[[], Page], outbox, stripe: FakeStripe, monkeypatch
) -> None:
    page = new_page()
    page.goto(f"{live_server}/signup")
    page.get_by_label("Your name").fill("Mary Somerville")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Business name").fill("Somerville Optics")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(live_server + outbox.link_in_last(EMAIL))
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Calendar", level=1)).to_be_visible()
    # Checkout sends the browser back to the public address: here, the test server.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_server)

    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    expect(page.locator("#billing-plan")).to_have_text("Free trial")
    page.get_by_role("button", name="Choose Pro").click()

    # Stripe's hosted page (the fake): a declined card first, then a good one.
    expect(page.get_by_role("heading", name="Subscribe to Pro")).to_be_visible()
    page.get_by_role("button", name="Decline (card declined)").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("card was declined"))
    page.get_by_role("button", name="Pay").click()

    expect(page).to_have_url(re.compile(r"/w/[^/]+/billing$"))
    expect(page.get_by_role("status")).to_contain_text("Thank you: this workspace is on Pro (active).")
    expect(page.locator("#billing-plan")).to_have_text("Pro")
    expect(page.locator("#billing-status")).to_have_text("Active")
    expect(page.get_by_role("row").filter(has_text="FAKE-0001")).to_contain_text("29.00 EUR")
    stripe.wait_delivered()
