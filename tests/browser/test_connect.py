"""A workspace owner connects a Mastodon account: off to the instance's sign-in, and back."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, make_workspace
from tests.fakes.mastodon import FakeMastodon


def test_connect_mastodon_through_the_instance_sign_in(app, live_server: str, new_page: Callable[[], Page]):
    previous = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = live_server  # the instance sends the browser back here
    try:
        with FakeMastodon(authorizing_username="harbor") as instance:
            tenant, owner = make_workspace(name="Harbor Dental")
            page = new_page()
            page.goto(f"{live_server}/login")
            page.get_by_label("Email", exact=True).fill(owner.email)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            page.goto(f"{live_server}/w/{tenant.slug}/channels/mastodon")
            page.get_by_label("Your Mastodon server").fill(instance.base_url)
            page.get_by_role("button", name="Continue to your server").click()

            # The instance approved (its fake does so at once) and sent the browser back to the Channels page.
            expect(page.get_by_role("status")).to_contain_text("Connected the Mastodon account @harbor")
            assert page.url == f"{live_server}/w/{tenant.slug}/channels"
            assert [e.path for e in instance.journal.entries("GET", "/oauth/authorize")] == ["/oauth/authorize"]
    finally:
        app.config["PUBLIC_BASE_URL"] = previous
