"""A business owner connects a Facebook Page through Facebook Login, picks it, composes a post, and it goes live."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from saas.publishing.dispatch import dispatch_due_targets, publish_queue
from tests.factories import PASSWORD, make_workspace
from tests.fakes import graph
from tests.fakes.facebook import FakeFacebook


def test_connect_a_facebook_page_pick_it_and_publish_from_the_composer(
    app, live_server: str, new_page: Callable[[], Page], redis_conn
):
    previous = app.config["FACEBOOK_PAGES_SETTINGS"], app.config["PUBLIC_BASE_URL"]
    with FakeFacebook(authorizing_user="maria") as facebook:
        bakery = facebook.add_page("Copper Bakery", "maria")
        facebook.add_page("Copper Café", "maria")
        app.config["FACEBOOK_PAGES_SETTINGS"] = previous[0] | {
            "client_id": graph.CLIENT_ID,
            "client_secret": graph.CLIENT_SECRET,
            "graph_url": facebook.base_url,
            "dialog_url": facebook.base_url,
        }
        app.config["PUBLIC_BASE_URL"] = live_server  # the OAuth redirect comes back to this server
        app.extensions.pop("publishers", None)
        try:
            _tenant, owner = make_workspace(name="Copper Cycles", timezone="America/Chicago")
            page = new_page()
            page.goto(f"{live_server}/login")
            page.get_by_label("Email", exact=True).fill(owner.email)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Channels").click()
            page.get_by_role("button", name="Connect Facebook Pages").click()  # Facebook approves as maria
            expect(page.get_by_role("heading", name="Choose what to connect from Facebook Pages")).to_be_visible()
            page.get_by_label(re.compile("Copper Bakery")).check()
            page.get_by_role("button", name="Connect the chosen accounts").click()
            expect(page.get_by_role("status")).to_contain_text("Connected @Copper Bakery on Facebook Pages")

            page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Posts").click()
            page.get_by_role("link", name="New post").first.click()
            page.get_by_label("Text").fill("Fresh sourdough from 7am")
            page.get_by_label(re.compile("Copper Bakery")).check()
            page.get_by_label("Publish now").check()
            page.get_by_role("button", name="Schedule").click()
            expect(page.get_by_role("status")).to_contain_text("Publishing now.")

            with app.app_context():
                dispatch_due_targets(redis_conn)
                worker = SimpleWorker([publish_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer)
                worker.work(burst=True)

            page.reload()
            expect(page.locator("section.target")).to_contain_text("Published")
            [post] = facebook.posts(bakery)
            assert post.message == "Fresh sourdough from 7am"
        finally:
            app.config["FACEBOOK_PAGES_SETTINGS"], app.config["PUBLIC_BASE_URL"] = previous
            app.extensions.pop("publishers", None)
