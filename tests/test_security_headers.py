"""Headers every page carries, and cookies that follow the public address: __Host- and Secure under https."""

from __future__ import annotations

import pytest
from flask import Flask

from saas import create_app
from tests.conftest import Client
from tests.factories import PASSWORD, make_workspace


@pytest.fixture
def https_app(app: Flask) -> Flask:
    """The same databases, served at an https public address (as production is)."""
    secure = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "SYSTEM_DATABASE_URL": app.config["SYSTEM_DATABASE_URL"],
            "REDIS_URL": app.config["REDIS_URL"],
            "MAIL_URL": None,
            "MAIL_DIR": app.config["MAIL_DIR"],
            "PUBLIC_BASE_URL": "https://app.example.com",
        }
    )
    secure.test_client_class = Client
    return secure


def _cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_pages_forbid_inline_script_framing_and_sniffing(client):
    headers = client.get("/login").headers
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other origin
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_under_http_cookies_keep_plain_names_and_there_is_no_hsts(client):
    response = client.get("/login")
    assert "Strict-Transport-Security" not in response.headers
    cookie = _cookies(response)["session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_under_https_the_session_cookie_is_host_prefixed_and_secure(https_app):
    client = https_app.test_client()
    response = client.get("/login", base_url="https://app.example.com")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookies = _cookies(response)
    assert "session" not in cookies
    cookie = cookies["__Host-session"]
    # What browsers demand of a __Host- cookie, or they drop it.
    assert "; Secure" in cookie and "; Path=/" in cookie and "Domain=" not in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert https_app.config["REMEMBER_COOKIE_NAME"] == "__Host-remember_token"
    assert https_app.config["REMEMBER_COOKIE_SECURE"] is True


def test_under_https_logging_in_works_with_the_prefixed_cookie(https_app):
    tenant, owner = make_workspace(name="Secure Bakery")
    client = https_app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    client.log_in(owner.email, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/calendar")
    assert page.status_code == 200
    assert "Secure Bakery" in page.get_data(as_text=True)


def test_the_billing_page_widens_only_form_action_for_stripe(client):
    tenant, owner = make_workspace(name="Paying Bakery")
    client.log_in(owner.email, PASSWORD)
    billing_csp = client.get(f"/w/{tenant.slug}/billing").headers["Content-Security-Policy"]
    calendar_csp = client.get(f"/w/{tenant.slug}/calendar").headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com;" in billing_csp
    assert billing_csp.replace(" https://checkout.stripe.com https://billing.stripe.com", "") == calendar_csp
