"""Sign up, verify, log in and out, reset, change password, end sessions, profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas import db
from tenants import system_session
from tenants.models import Membership, Role, Tenant, TenantKind, User, UserToken
from tests.factories import PASSWORD, app_context, make_user, make_workspace

NEW_PASSWORD = "velvet-harbour-compass-7"


def signup_data(**overrides):
    data = {
        "name": "Ada Baker",
        "email": "ada@example.com",
        "business_name": "Ada's Bakes",
        "password": "sourdough-starter-rises",
        "timezone": "Europe/Berlin",
    }
    return {**data, **overrides}


def users_named(email):
    with app_context(), db.new_session() as session:
        return session.scalars(sa.select(User).where(User.email == email)).all()


def test_sign_up_creates_user_and_owned_direct_tenant(client, outbox):
    response = client.submit("/signup", signup_data(email="  Ada@Example.COM "), page="/signup")
    assert response.status_code == 302
    assert "/signup/check-email" in response.headers["Location"]
    [user] = users_named("ada@example.com")
    assert user.email_verified_at is None
    assert user.timezone == "Europe/Berlin"
    with app_context(), system_session() as session:
        tenant, role = session.execute(
            sa.select(Tenant, Membership.role)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user.id)
        ).one()
    assert (tenant.name, tenant.kind, tenant.slug, tenant.timezone, role) == (
        "Ada's Bakes",
        TenantKind.DIRECT,
        "ada-s-bakes",
        "Europe/Berlin",
        Role.OWNER,
    )
    mail = outbox.last_to("ada@example.com")
    assert mail["Subject"] == "Confirm your email for Multipost"
    assert "/verify/" in mail.get_content()


def test_unverified_user_cannot_log_in_and_gets_a_new_link(client, outbox):
    client.submit("/signup", signup_data(), page="/signup")
    response = client.submit("/login", {"email": "ada@example.com", "password": "sourdough-starter-rises"})
    assert response.status_code == 422
    assert b"confirm your email address first" in response.data
    assert len(outbox.to("ada@example.com")) == 2
    assert client.get("/account").status_code == 302  # not logged in


def test_verify_then_log_in_lands_in_the_workspace(client, outbox):
    client.submit("/signup", signup_data(), page="/signup")
    response = client.get(outbox.link_in_last("ada@example.com"))
    assert response.status_code == 302
    assert client.get(response.headers["Location"]).status_code == 200
    response = client.submit("/login", {"email": "ada@example.com", "password": "sourdough-starter-rises"})
    assert response.headers["Location"] == "/w/ada-s-bakes/calendar"
    page = client.get("/w/ada-s-bakes/calendar")
    assert page.status_code == 200
    assert b"Nothing is scheduled yet" in page.data


def test_verification_link_works_once(client, outbox):
    client.submit("/signup", signup_data(), page="/signup")
    link = outbox.link_in_last("ada@example.com")
    assert client.get(link).status_code == 302
    again = client.get(link)
    assert again.status_code == 400
    assert b"already been used" in again.data


def test_expired_verification_link_is_refused(client, outbox):
    client.submit("/signup", signup_data(), page="/signup")
    with app_context(), db.new_session() as session:
        session.execute(sa.update(UserToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    response = client.get(outbox.link_in_last("ada@example.com"))
    assert response.status_code == 400
    assert b"expired" in response.data
    assert users_named("ada@example.com")[0].email_verified_at is None


def test_made_up_token_is_refused(client):
    response = client.get("/verify/not-a-real-token")
    assert response.status_code == 400
    assert b"not valid" in response.data


def test_duplicate_sign_up_reveals_nothing_and_tells_the_owner(client, outbox):
    existing = make_user("taken@example.com", name="First Owner")
    response = client.submit("/signup", signup_data(email="taken@example.com", name="Someone Else"), page="/signup")
    # The same answer as a fresh sign-up…
    assert response.status_code == 302
    assert "/signup/check-email" in response.headers["Location"]
    # …no second account or tenant, and the real owner hears about it.
    [user] = users_named("taken@example.com")
    assert user.id == existing.id and user.name == "First Owner"
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(sa.func.count(Tenant.id))) == 0
    assert outbox.last_to("taken@example.com")["Subject"] == "You already have a Multipost account"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("password", "short", b"Use at least 10 characters."),
        ("password", "password123", b"too common"),
        ("password", "qwertyuiop", b"too common"),
        ("password", "aaaaaaaaaaaa", b"too common"),
        ("password", "ada@example.com", b"Don&#39;t use your email address"),
        ("password", "x" * 129, b"Use at most 128 characters."),
        ("email", "not-an-email", b"Enter an email address like name@example.com."),
        ("email", "a@b", b"Enter an email address like name@example.com."),
        ("email", "", b"Enter your email address."),
        ("email", "a" * 250 + "@example.com", b"Use at most 254 characters."),
        ("name", "", b"Enter your name."),
        ("name", "n" * 121, b"Use at most 120 characters."),
        ("business_name", "   ", b"Enter the name of your business."),
        ("business_name", "b" * 121, b"Use at most 120 characters."),
        ("timezone", "Mars/Olympus_Mons", b"Choose a time zone from the list"),
        ("timezone", "", b"Choose a time zone"),
    ],
)
def test_sign_up_bad_input_shows_the_field_error_and_creates_nothing(client, outbox, field, value, message):
    response = client.submit("/signup", signup_data(**{field: value}), page="/signup")
    assert response.status_code == 422
    assert message in response.data
    assert b'aria-invalid="true"' in response.data
    assert users_named("ada@example.com") == []
    assert outbox.messages() == []


def test_sign_up_keeps_what_was_typed_after_an_error(client):
    response = client.submit("/signup", signup_data(password="short"), page="/signup")
    assert b'value="Ada Baker"' in response.data
    assert b'value="ada@example.com"' in response.data
    assert b'<option selected value="Europe/Berlin">' in response.data


def test_form_without_csrf_token_is_refused(client):
    response = client.post("/signup", data=signup_data())
    assert response.status_code == 400
    assert b"That form expired" in response.data
    assert users_named("ada@example.com") == []


def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    make_user("known@example.com")
    wrong = client.submit("/login", {"email": "known@example.com", "password": "not-the-password"})
    unknown = client.submit("/login", {"email": "nobody@example.com", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 422
    assert b"Wrong email or password." in wrong.data
    assert b"Wrong email or password." in unknown.data


def test_login_only_redirects_to_local_paths(client):
    user = make_user()
    response = client.submit("/login?next=//evil.example/steal", {"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/account/workspaces"
    response = client.submit("/login?next=/account", {"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/account"


def test_login_is_rate_limited_per_account(app, make_client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "3 per 15 minutes"
    try:
        user = make_user()
        attacker = make_client()
        for _ in range(3):
            assert attacker.submit("/login", {"email": user.email, "password": "guess-guess-1"}).status_code == 422
        blocked = attacker.submit("/login", {"email": user.email, "password": PASSWORD})
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0
        assert b"Too many attempts" in blocked.data
        # Even the right password waits: the account is being guessed at.
        assert make_client().submit("/login", {"email": user.email, "password": PASSWORD}).status_code == 429
        # Other accounts are unaffected.
        other = make_user()
        assert make_client().submit("/login", {"email": other.email, "password": PASSWORD}).status_code == 302
    finally:
        app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "10 per 15 minutes"


def test_login_is_rate_limited_per_ip(app, client):
    app.config["LOGIN_LIMIT_PER_IP"] = "4 per 15 minutes"
    try:
        for n in range(4):
            assert client.submit("/login", {"email": f"spray{n}@example.com", "password": "x" * 12}).status_code == 422
        assert client.submit("/login", {"email": "spray9@example.com", "password": "x" * 12}).status_code == 429
        elsewhere = client.submit(
            "/login", {"email": "spray9@example.com", "password": "x" * 12}, environ_base={"REMOTE_ADDR": "10.9.8.7"}
        )
        assert elsewhere.status_code == 422
    finally:
        app.config["LOGIN_LIMIT_PER_IP"] = "50 per 15 minutes"


def test_logout_ends_the_session(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    assert client.get("/account").status_code == 200
    client.submit("/logout", page="/account")
    assert client.get("/account").status_code == 302


def test_logout_needs_a_post_with_token(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200


def test_log_out_everywhere_ends_every_session(make_client):
    user = make_user()
    laptop, phone = make_client(), make_client()
    laptop.log_in(user.email, PASSWORD)
    phone.log_in(user.email, PASSWORD)
    laptop.submit("/account/sessions/end", page="/account")
    assert laptop.get("/account").status_code == 302
    assert phone.get("/account").status_code == 302
    fresh = make_client()
    fresh.log_in(user.email, PASSWORD)
    assert fresh.get("/account").status_code == 200


def test_password_change_keeps_this_session_and_ends_the_others(make_client):
    user = make_user()
    laptop, phone = make_client(), make_client()
    laptop.log_in(user.email, PASSWORD)
    phone.log_in(user.email, PASSWORD)
    response = laptop.submit(
        "/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        page="/account",
    )
    assert response.status_code == 302
    assert laptop.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    make_client().log_in(user.email, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"current_password": "wrong-one-entirely", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            b"That is not your current password.",
        ),
        (
            {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"},
            b"The two passwords differ.",
        ),
        ({"current_password": PASSWORD, "password": "1234567890", "confirm": "1234567890"}, b"too common"),
    ],
)
def test_password_change_bad_input(client, data, message):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    response = client.submit("/account/password", data, page="/account")
    assert response.status_code == 422
    assert message in response.data
    client.submit("/logout", page="/account")
    client.log_in(user.email, PASSWORD)  # the old password still works


def test_profile_update_and_bad_timezone(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    assert (
        client.submit("/account", {"name": "Renamed Person", "timezone": "Asia/Tokyo"}, page="/account").status_code
        == 302
    )
    bad = client.submit("/account", {"name": "Renamed Again", "timezone": "Asia/Atlantis"}, page="/account")
    assert bad.status_code == 422
    assert b"Choose a time zone from the list" in bad.data
    [saved] = users_named(user.email)
    assert (saved.name, saved.timezone) == ("Renamed Person", "Asia/Tokyo")


def test_password_reset_by_emailed_link(make_client, outbox):
    user = make_user()
    other_device = make_client()
    other_device.log_in(user.email, PASSWORD)
    client = make_client()
    response = client.submit("/reset", {"email": user.email.upper()}, page="/reset")
    assert b"If an account exists" in response.data
    link = outbox.link_in_last(user.email)
    assert client.get(link).status_code == 200
    response = client.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, page=link)
    assert response.status_code == 302
    assert client.get("/account").status_code == 200  # logged in by the reset
    assert other_device.get("/account").status_code == 302  # everywhere else logged out
    again = client.get(link)
    assert again.status_code == 400 and b"already been used" in again.data
    make_client().log_in(user.email, NEW_PASSWORD)


def test_reset_for_unknown_email_looks_the_same_and_sends_nothing(client, outbox):
    response = client.submit("/reset", {"email": "ghost@example.com"}, page="/reset")
    assert response.status_code == 200
    assert b"If an account exists" in response.data
    assert outbox.messages() == []


def test_newer_reset_link_replaces_older(client, outbox):
    user = make_user()
    client.submit("/reset", {"email": user.email}, page="/reset")
    first = outbox.link_in_last(user.email)
    client.submit("/reset", {"email": user.email}, page="/reset")
    second = outbox.link_in_last(user.email)
    assert first != second
    assert client.get(first).status_code == 400
    assert client.get(second).status_code == 200


def test_expired_reset_link_is_refused(client, outbox):
    user = make_user()
    client.submit("/reset", {"email": user.email}, page="/reset")
    with app_context(), db.new_session() as session:
        session.execute(sa.update(UserToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        session.commit()
    link = outbox.link_in_last(user.email)
    response = client.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, page="/reset")
    assert response.status_code == 400
    assert b"expired" in response.data
    client.log_in(user.email, PASSWORD)


def test_reset_requests_are_rate_limited_per_account(app, client, outbox):
    user = make_user()
    for _ in range(3):
        assert client.submit("/reset", {"email": user.email}, page="/reset").status_code == 200
    assert client.submit("/reset", {"email": user.email}, page="/reset").status_code == 429
    assert len(outbox.to(user.email)) == 3


def test_cookies_are_http_only_and_same_site_lax(client):
    user = make_user()
    response = client.log_in(user.email, PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_workspace_switcher_lists_every_membership(client):
    tenant_a, user = make_workspace(name="Alpha Studio")
    other, _ = make_workspace(name="Beta Foods")
    from tests.factories import add_member

    add_member(other, user, Role.VIEWER)
    client.log_in(user.email, PASSWORD)
    page = client.get("/account/workspaces")
    assert b"Alpha Studio" in page.data and b"Beta Foods" in page.data
    assert client.get(f"/w/{other.slug}/calendar").status_code == 200
