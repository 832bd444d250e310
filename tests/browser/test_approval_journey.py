"""Agency staff draft for a client, the client's reviewer asks for a change from the emailed link, then approves,
and the post goes out through the Sandbox network."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, StepRule
from saas.publishing.dispatch import dispatch_due_targets, publish_queue
from tenants import tenant_session
from tenants.models import Role, TenantKind
from tests.factories import PASSWORD, add_member, app_context, make_tenant, make_user, make_workspace
from tests.test_agency import assign

REVIEWER = "rosa@bluebell.example"


def log_in(page: Page, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def review_link(outbox, live_server: str) -> str:
    body = outbox.last_to(REVIEWER).get_content()
    return live_server + re.search(r"http://localhost(/review/\S+)", body).group(1)


def test_staff_draft_reviewer_requests_change_then_approves_and_it_publishes(
    app, live_server: str, new_page: Callable[[], Page], redis_conn, outbox, client
):
    app.config["SANDBOX_BASE_URL"] = f"{live_server}/sandbox"
    app.extensions.pop("publishers", None)
    try:
        agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
        staff = make_user("sam@northwind.example", name="Sam Staff")
        add_member(agency, staff, Role.EDITOR)
        bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=make_user())
        add_member(bluebell, make_user(REVIEWER, name="Rosa Reviewer"), Role.REVIEWER)
        with app_context(), tenant_session(bluebell.id) as session:
            step = approvals.Step("Client approval", StepRule.ANY, roles=(Role.REVIEWER,))
            approvals.set_policy(session, ApprovalMode.REQUIRED, [step])
            session.commit()
        assign(client, agency_owner, agency, bluebell, staff)

        # The agency's owner connects the client's Sandbox account.
        owner_page = new_page()
        log_in(owner_page, live_server, agency_owner.email)
        owner_page.goto(f"{live_server}/w/{bluebell.slug}/channels")
        owner_page.get_by_role("button", name="Connect a Sandbox account").click()
        expect(owner_page.get_by_role("status")).to_contain_text("Connected the Sandbox account")

        # Staff draft in the client's workspace, visibly for the client, and submit for approval.
        page = new_page()
        log_in(page, live_server, staff.email)
        page.goto(f"{live_server}/w/{bluebell.slug}/posts/new")
        expect(page.get_by_role("note")).to_contain_text("Northwind Social for Bluebell Bakery")
        page.get_by_label("Text").fill("Fresh rye every morning")
        page.get_by_label(re.compile("Bluebell")).first.check()
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("status")).to_contain_text("Draft saved")
        assert outbox.to(REVIEWER) == []  # a draft asks nobody yet
        page.get_by_role("link", name="Edit and schedule").click()
        page.get_by_label("Publish now").check()
        page.get_by_role("button", name="Submit for approval").click()
        expect(page.get_by_role("status")).to_contain_text("Sent for approval")

        # The reviewer opens the emailed link, without an account session, and asks for a change.
        reviewer = new_page()
        reviewer.goto(review_link(outbox, live_server))
        expect(reviewer.locator("blockquote")).to_contain_text("Fresh rye every morning")
        reviewer.get_by_label(re.compile("Comment")).fill("Please say it is baked at 6am")
        reviewer.get_by_role("button", name="Request changes").click()
        expect(reviewer.get_by_role("status")).to_contain_text("Your request for changes was sent.")

        # Staff see the comment, edit, and the edit goes for approval again.
        page.reload()
        expect(page.locator("#approval")).to_contain_text("Please say it is baked at 6am")
        page.get_by_role("link", name="Edit", exact=True).click()
        page.get_by_label("Text").fill("Fresh rye every morning, baked at 6am")
        page.get_by_label("Publish now").check()
        page.get_by_role("button", name="Submit for approval").click()
        expect(page.get_by_role("status")).to_contain_text("Sent for approval")

        reviewer.goto(review_link(outbox, live_server))
        expect(reviewer.locator("blockquote")).to_contain_text("baked at 6am")
        reviewer.get_by_role("button", name="Approve").click()
        expect(reviewer.get_by_role("status")).to_contain_text("approval is recorded")

        with app.app_context():
            dispatch_due_targets(redis_conn)
            SimpleWorker([publish_queue(redis_conn)], connection=redis_conn, serializer=JSONSerializer).work(burst=True)

        page.reload()
        target = page.locator("section.target")
        expect(target).to_contain_text("Published")
        expect(page.locator("#approval")).to_contain_text("Rosa Reviewer approved revision 3")
        target.get_by_role("link", name="view the post").click()
        expect(page.get_by_text("Fresh rye every morning, baked at 6am")).to_be_visible()
    finally:
        app.config["SANDBOX_BASE_URL"] = "http://localhost/sandbox"
        app.extensions.pop("publishers", None)
