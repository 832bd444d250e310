"""A business owner signs up, confirms the address, logs in and brings a colleague into the workspace."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

OWNER_EMAIL = "ada@example.com"
OWNER_PASSWORD = "quiet-meadow-tractor-19"
BUSINESS = "Lovelace Bakery"
COLLEAGUE_EMAIL = "grace@example.com"
COLLEAGUE_NAME = "Grace Hopper"


def flash(page: Page, text: str) -> Locator:
    """The flash message shown after a redirect."""
    return page.get_by_role("status").get_by_text(text)


def test_sign_up_verify_log_in_invite_and_accept(live_server: str, new_page: Callable[[], Page], outbox) -> None:
    owner = new_page()

    # Sign up.
    owner.goto(f"{live_server}/signup")
    owner.get_by_label("Your name").fill("Ada Lovelace")
    owner.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
    owner.get_by_label("Business name").fill(BUSINESS)
    owner.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    owner.get_by_label("Time zone").select_option("Europe/Berlin")
    owner.get_by_role("button", name="Create account").click()
    expect(owner.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(owner.get_by_text(OWNER_EMAIL)).to_be_visible()

    # Confirm the address with the emailed link.
    owner.goto(live_server + outbox.link_in_last(OWNER_EMAIL))
    expect(owner).to_have_url(re.compile(r"/login\b"))
    expect(flash(owner, "Your email address is confirmed")).to_be_visible()

    # Log in: the new workspace's calendar.
    owner.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
    owner.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    owner.get_by_role("button", name="Log in").click()
    expect(owner).to_have_url(re.compile(r"/w/[^/]+/calendar$"))
    expect(owner.get_by_role("heading", name="Calendar", level=1)).to_be_visible()
    workspace_url = owner.url

    # Invite a colleague as an editor.
    owner.get_by_role("navigation", name="Workspace").get_by_role("link", name="Team").click()
    expect(owner.get_by_role("heading", name="Team", level=1)).to_be_visible()
    invite_form = owner.locator("form", has=owner.get_by_role("button", name="Send invitation"))
    invite_form.get_by_label("Email address").fill(COLLEAGUE_EMAIL)
    role = invite_form.get_by_label("Role", exact=True)
    expect(role, "the invite form's Role select has no label (its <label for> points elsewhere)").to_be_visible()
    role.select_option("editor")
    invite_form.get_by_role("button", name="Send invitation").click()
    expect(flash(owner, f"Invitation sent to {COLLEAGUE_EMAIL}")).to_be_visible()
    invitations = owner.get_by_role("heading", name="Open invitations").locator("xpath=following-sibling::ul[1]")
    expect(invitations.get_by_role("listitem")).to_have_count(1)
    expect(invitations.get_by_role("listitem")).to_contain_text(f"{COLLEAGUE_EMAIL} as Editor")

    # The colleague, in their own browser, accepts with a new account.
    colleague = new_page()
    colleague.goto(live_server + outbox.link_in_last(COLLEAGUE_EMAIL))
    expect(colleague.get_by_role("heading", name=f"Join {BUSINESS}")).to_be_visible()
    colleague.get_by_label("Your name").fill(COLLEAGUE_NAME)
    colleague.get_by_label("Password", exact=True).fill("amber-harbour-violin-73")
    colleague.get_by_role("button", name="Create account and join").click()
    expect(colleague).to_have_url(workspace_url)
    expect(colleague.get_by_role("heading", name="Calendar", level=1)).to_be_visible()
    expect(flash(colleague, f"Welcome to {BUSINESS}")).to_be_visible()

    # The owner sees the new editor on the team, and no invitation left open.
    owner.reload()
    member = owner.get_by_role("row").filter(has_text=COLLEAGUE_EMAIL)
    expect(member).to_contain_text(COLLEAGUE_NAME)
    expect(member.get_by_role("combobox", name=f"Role of {COLLEAGUE_NAME}")).to_have_value("editor")
    expect(owner.get_by_role("heading", name="No open invitations")).to_be_visible()
