"""A business owner turns on two-factor authentication from the set-up page, saves the recovery codes, and
the next log-in asks for the code from the authenticator app (here computed by pyotp)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, make_workspace
from tests.identity_helpers import code_for


def test_turn_on_two_factor_and_log_in_with_a_code(live_server: str, new_page: Callable[[], Page]):
    tenant, owner = make_workspace(name="Copper Cycles")
    page = new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email", exact=True).fill(owner.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server}/w/{tenant.slug}/calendar")

    page.goto(f"{live_server}/account")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    page.get_by_role("button", name="Set up two-factor authentication").click()
    qr = page.get_by_role("img", name="QR code to add Multipost to your authenticator app")
    expect(qr).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", qr.element_handle()) > 0  # the data: SVG renders under the CSP
    secret = page.locator("code.secret-key").inner_text()
    page.get_by_label("Code").fill(code_for(secret, -1))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.locator("ul.recovery-codes li")).to_have_count(10)

    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email", exact=True).fill(owner.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code").fill(code_for(secret))
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server}/w/{tenant.slug}/calendar")
