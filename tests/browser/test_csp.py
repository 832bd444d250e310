"""A script typed into a post never runs: the text is escaped, and if escaping ever failed the CSP would stop it.

To show the second wall on its own, the browser is handed the page as our server sent it (same headers,
Content-Security-Policy included) but with the post's text un-escaped, as a template bug would leave it.
Chromium must refuse the inline script and report the violation; the same page without the CSP header runs
it, so the test would notice a policy that allowed inline scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape
from playwright.sync_api import Page, Route, expect

from saas.approvals import service as approvals
from saas.posts import service as post_service
from saas.sandbox import connect as sandbox_connect
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace

PAYLOAD = "<script>window.pwned = 1</script>"
WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective));
"""


@pytest.fixture
def scheduled(app):
    """A workspace with a post whose text is a script, scheduled for tomorrow, and a review link to it."""
    tenant, owner = make_workspace(name="Script Kiddies Inc")
    when = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=30, second=0, microsecond=0)
    with app_context(), tenant_session(tenant.id) as session:
        channel = sandbox_connect.connect_new_account(session, "Shop")
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text=PAYLOAD,
            channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=False, local_time=when.replace(tzinfo=None), timezone="UTC"),
        )
        raw, _link = approvals.issue_link(session, owner.id, [post.id], owner.id)
        session.commit()
        return tenant, owner, post.id, when, raw


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(f"{base}/login")


def unescape_payload(keep_csp: bool) -> Callable[[Route], None]:
    """Serve our server's answer with the payload un-escaped (headers kept, or the CSP dropped)."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.text()
        assert str(escape(PAYLOAD)) in body, "the page should have the post's text, escaped"
        headers = {k: v for k, v in response.headers.items() if keep_csp or k.lower() != "content-security-policy"}
        route.fulfill(response=response, body=body.replace(str(escape(PAYLOAD)), PAYLOAD), headers=headers)

    return handle


@pytest.mark.parametrize("where", ["calendar", "post", "review"])
def test_an_injected_script_in_a_post_never_runs(live_server, new_page, scheduled, where):
    tenant, owner, post_id, when, raw = scheduled
    url = {
        "calendar": f"{live_server}/w/{tenant.slug}/calendar?date={when.date().isoformat()}",
        "post": f"{live_server}/w/{tenant.slug}/posts/{post_id}",
        "review": f"{live_server}/review/{raw}",
    }[where]
    page = new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    if where != "review":
        log_in(page, live_server, owner.email)

    # As served: escaped, shown as text.
    page.goto(url)
    expect(page.get_by_text(PAYLOAD).first).to_be_visible()
    assert page.evaluate("window.pwned") is None

    # Escaping "broken": the CSP alone refuses the inline script, and says so.
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.route(url, unescape_payload(keep_csp=True))
    page.goto(url)
    assert page.evaluate("window.pwned") is None
    assert "script-src-elem" in page.evaluate("window.cspViolations")
    assert any("Content Security Policy" in text for text in console)

    # The same page without our CSP runs it: the check above is the policy's doing.
    page.unroute(url)
    page.route(url, unescape_payload(keep_csp=False))
    page.goto(url)
    assert page.evaluate("window.pwned") == 1
