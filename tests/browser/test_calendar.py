"""A social media manager composes for two channels with an override, sees it on the calendar, drags it to
another day (and moves it once more with the keyboard), and it publishes there through the Sandbox network."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from saas.posts.models import Post, PostTarget
from saas.publishing.dispatch import dispatch_due_targets, publish_queue
from saas.sandbox import connect as sandbox_connect
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace


def _next_wednesday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=(2 - today.weekday()) % 7 + 7)


def test_compose_override_calendar_drag_and_publish(app, live_server: str, new_page: Callable[[], Page], redis_conn):
    app.config["SANDBOX_BASE_URL"] = f"{live_server}/sandbox"
    app.extensions.pop("publishers", None)
    try:
        tenant, owner = make_workspace(name="Copper Cycles", timezone="Europe/Berlin")
        with app_context(), tenant_session(tenant.id) as session:
            shop = sandbox_connect.connect_new_account(session, "Copper Shop")
            cafe = sandbox_connect.connect_new_account(session, "Copper Cafe")
            session.commit()
            shop_handle, cafe_handle = shop.handle, cafe.handle

        page = new_page()
        page.goto(f"{live_server}/login")
        page.get_by_label("Email", exact=True).fill(owner.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        page.get_by_role("link", name="New post").first.click()
        page.get_by_label("Text", exact=True).fill("Spring tune-ups are open 🚲")
        page.get_by_label(re.compile(r"Copper Shop \(@")).check()
        page.get_by_label(re.compile(r"Copper Cafe \(@")).check()
        expect(page.locator(f"[data-counter-for='{shop.id}']")).to_have_text("26 / 500")  # counted by the server
        page.get_by_text(f"Customize for @{cafe_handle}").click()
        page.get_by_role("group", name=f"For @{cafe_handle}").get_by_label("Own version").fill(
            "Coffee while you wait ☕"
        )
        expect(page.locator(f"[data-counter-for='{cafe.id}']")).to_have_text("23 / 500")
        expect(page.locator("#previews")).to_contain_text("Coffee while you wait ☕")
        wednesday = _next_wednesday()
        page.get_by_label("Date", exact=True).fill(wednesday.isoformat())
        page.get_by_label("Time", exact=True).fill("10:30")
        expect(page.get_by_text("Europe/Berlin").first).to_be_visible()
        page.get_by_role("button", name="Schedule").click()
        expect(page.get_by_role("status")).to_contain_text("Scheduled.")

        page.goto(f"{live_server}/w/{tenant.slug}/calendar?date={wednesday.isoformat()}")
        entry = page.locator(f"[data-date='{wednesday.isoformat()}'] .cal-post")
        expect(entry).to_contain_text("10:30 Spring tune-ups are open")
        thursday = wednesday + timedelta(days=1)
        entry.drag_to(page.locator(f"[data-date='{thursday.isoformat()}']"))
        expect(page.locator(f"[data-date='{thursday.isoformat()}'] .cal-post")).to_contain_text("10:30 Spring")
        expect(page.locator(f"[data-date='{wednesday.isoformat()}'] .cal-post")).to_have_count(0)

        # The same with the keyboard: the Move link opens a dialog; Enter submits it.
        friday = thursday + timedelta(days=1)
        page.locator(f"[data-date='{thursday.isoformat()}'] .move-link").focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Move post")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("Date")).to_be_focused()
        dialog.get_by_label("Date").fill(friday.isoformat())
        dialog.get_by_label("Time").press("Enter")
        expect(page.get_by_role("status")).to_contain_text(f"Moved to {friday:%-d %b %Y}, 10:30 Europe/Berlin.")
        expect(page.locator(f"[data-date='{friday.isoformat()}'] .cal-post")).to_contain_text("10:30 Spring")

        with app_context(), tenant_session(tenant.id) as session:
            post = session.scalar(sa.select(Post))
            assert post.local_time == datetime.combine(friday, datetime.min.time()).replace(hour=10, minute=30)
            # The clock reaching Thursday 10:30: make it due now, then the dispatcher and a worker run.
            session.execute(sa.update(PostTarget).values(due_at=sa.func.now()))
            session.commit()
        with app.app_context():
            dispatch_due_targets(redis_conn)
            SimpleWorker([publish_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer).work(burst=True)

        page.get_by_role("link", name=re.compile("Spring tune-ups")).first.click()
        expect(page.locator("section.target")).to_have_count(2)
        for target in page.locator("section.target").all():
            expect(target).to_contain_text("Published")
        page.goto(f"{live_server}/sandbox/@{cafe_handle}")
        expect(page.get_by_text("Coffee while you wait ☕")).to_be_visible()
        page.goto(f"{live_server}/sandbox/@{shop_handle}")
        expect(page.get_by_text("Spring tune-ups are open 🚲")).to_be_visible()
    finally:
        app.config["SANDBOX_BASE_URL"] = "http://localhost/sandbox"
        app.extensions.pop("publishers", None)


def test_the_composer_keeps_what_was_typed_across_a_reload(app, live_server: str, new_page: Callable[[], Page]):
    tenant, owner = make_workspace(name="Autosave Bakery", timezone="Europe/Berlin")
    with app_context(), tenant_session(tenant.id) as session:
        sandbox_connect.connect_new_account(session, "Autosave Bakery")
        session.commit()
    page = new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email", exact=True).fill(owner.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/w/{tenant.slug}/posts/new")
    page.get_by_label("Text", exact=True).fill("Half-written thought about rye")
    page.get_by_label("Internal notes").fill("check the oven times")
    expect(page.locator("#autosave-status")).to_have_text("Saved on this device as you type.")
    page.reload()
    expect(page.get_by_text("Restored what you were writing here before.")).to_be_visible()
    expect(page.get_by_label("Text", exact=True)).to_have_value("Half-written thought about rye")
    expect(page.get_by_label("Internal notes")).to_have_value("check the oven times")
    page.get_by_role("button", name="Discard it").click()
    expect(page.get_by_label("Text", exact=True)).to_have_value("")

    # The preview says when a network cannot take a thread, before "Schedule" refuses it.
    page.get_by_label("Text", exact=True).fill("Rye is back")
    page.get_by_label(re.compile(r"Autosave Bakery \(@")).check()
    page.get_by_label("Thread").fill("Sourdough too\n---\nAnd spelt")
    expect(page.locator("#previews")).to_contain_text("Sandbox does not take threads")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator(".error-summary")).to_contain_text("Sandbox does not take threads: publish one post.")
