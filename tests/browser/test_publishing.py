"""A business owner connects the Sandbox, writes a post, publishes it, and sees it live."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from saas.publishing.dispatch import dispatch_due_targets, publish_queue
from tests.factories import PASSWORD, make_workspace


def test_connect_compose_publish_and_see_it_live(app, live_server: str, new_page: Callable[[], Page], redis_conn):
    app.config["SANDBOX_BASE_URL"] = f"{live_server}/sandbox"  # the app's own Sandbox network, over real HTTP
    app.extensions.pop("publishers", None)
    try:
        tenant, owner = make_workspace(name="Copper Cycles", timezone="America/Chicago")
        page = new_page()
        page.goto(f"{live_server}/login")
        page.get_by_label("Email", exact=True).fill(owner.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

        page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Channels").click()
        page.get_by_role("button", name="Connect a Sandbox account").click()
        expect(page.get_by_role("status")).to_contain_text("Connected the Sandbox account @coppercycles")

        page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Posts").click()
        page.get_by_role("link", name="New post").first.click()
        page.get_by_label("Text").fill("Spring tune-ups are open for booking 🚲")
        page.get_by_label(re.compile("Copper Cycles")).check()
        page.get_by_label("Publish now").check()
        expect(page.get_by_text("America/Chicago")).to_be_visible()  # the zone is shown next to the time
        page.get_by_role("button", name="Schedule").click()
        expect(page.get_by_role("status")).to_contain_text("Publishing now.")

        # The clock and a worker do their part (in this process, against the real Redis).
        with app.app_context():
            dispatch_due_targets(redis_conn)
            SimpleWorker([publish_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer).work(burst=True)

        page.reload()
        target = page.locator("section.target")
        expect(target).to_contain_text("Published")
        target.get_by_role("link", name="view the post").click()
        expect(page.get_by_text("Spring tune-ups are open for booking 🚲")).to_be_visible()
    finally:
        app.config["SANDBOX_BASE_URL"] = "http://localhost/sandbox"
        app.extensions.pop("publishers", None)
