"""Re-authentication before sensitive changes, and changing the email address."""

from __future__ import annotations

from datetime import timedelta

from saas import db, passwords
from tenants.models import User
from tests.factories import PASSWORD, app_context, enable_two_factor, make_user, make_workspace
from tests.identity_helpers import age_sessions, code_for, event_kinds, log_in_with_code, wrong_code

NEW_PASSWORD = "velvet-harbour-compass-7"
STALE = {"authenticated_at": timedelta(minutes=11)}


def _password_hash(user_id):
    with app_context(), db.new_session() as session:
        return session.get(User, user_id).password_hash


def test_a_stale_session_confirms_the_password_then_returns_to_the_page(client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    log_in_with_code(client, user.email, secret)
    client.submit("/account/two-factor/disable", page="/account/two-factor")  # fresh: allowed at once
    client.submit("/account/two-factor/setup", page="/account/two-factor")
    age_sessions(user.id, **STALE)
    asked = client.get("/account/two-factor/confirm")
    assert asked.headers["Location"] == "/account/confirm?next=/account/two-factor/confirm"
    assert b"Confirm it is you" in client.get(asked.headers["Location"]).data
    back = client.submit(asked.headers["Location"], {"password": PASSWORD}, page="/account")
    assert back.headers["Location"] == "/account/two-factor/confirm"
    assert client.get("/account/two-factor/confirm").status_code == 200
    assert "reauthenticated" in event_kinds(user.id)


def test_a_stale_post_is_never_replayed_but_the_form_is_offered_again(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    age_sessions(user.id, **STALE)
    before = _password_hash(user.id)
    change = {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    asked = client.submit("/account/password", change, page="/account", headers={"Referer": "http://localhost/account"})
    assert asked.headers["Location"] == "/account/confirm?next=/account"
    assert _password_hash(user.id) == before  # nothing changed yet
    back = client.submit(asked.headers["Location"], {"password": PASSWORD}, page="/account")
    assert back.headers["Location"] == "/account"
    assert _password_hash(user.id) == before  # and nothing was replayed
    assert client.submit("/account/password", change, page="/account").status_code == 302
    with app_context():
        assert passwords.verify_password(_password_hash(user.id), NEW_PASSWORD)


def test_confirming_needs_the_right_password_and_the_second_factor(client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    log_in_with_code(client, user.email, secret, is_code=False)
    age_sessions(user.id, **STALE)
    target = "/account/confirm?next=/account/two-factor"
    wrong_password = client.submit(
        target, {"password": "not-my-password", "code": code_for(secret, 1)}, page="/account"
    )
    assert wrong_password.status_code == 422
    assert b"That is not your password." in wrong_password.data
    no_code = client.submit(target, {"password": PASSWORD}, page="/account")
    assert no_code.status_code == 422
    bad_code = client.submit(target, {"password": PASSWORD, "code": wrong_code(secret)}, page="/account")
    assert bad_code.status_code == 422
    assert b"That code is not right" in bad_code.data
    # Still stale: the protected action still asks.
    assert (
        client.submit("/account/two-factor/disable", page="/account/two-factor")
        .headers["Location"]
        .startswith("/account/confirm")
    )
    ok = client.submit(target, {"password": PASSWORD, "code": code_for(secret, 1)}, page="/account")
    assert ok.headers["Location"] == "/account/two-factor"
    assert client.submit("/account/two-factor/disable", page="/account/two-factor").headers["Location"] == (
        "/account/two-factor"
    )


def test_confirming_only_returns_to_local_pages(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    back = client.submit("/account/confirm?next=//evil.example/x", {"password": PASSWORD}, page="/account")
    assert back.headers["Location"] == "/account"


def test_billing_actions_ask_for_the_password_when_it_is_stale(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    age_sessions(owner.id, **STALE)
    page = f"/w/{tenant.slug}/billing"
    for action in ("checkout", "portal"):
        response = client.submit(f"/w/{tenant.slug}/billing/{action}", {"plan": "pro"}, page=page)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/account/confirm?next=")


def test_the_password_is_asked_in_the_session_that_is_stale_only(make_client):
    user = make_user()
    old, fresh = make_client(), make_client()
    old.log_in(user.email, PASSWORD)
    age_sessions(user.id, **STALE)
    fresh.log_in(user.email, PASSWORD)
    assert (
        fresh.submit("/account/two-factor/setup", page="/account/two-factor")
        .headers["Location"]
        .startswith("/account/two-factor/confirm")
    )
    assert (
        old.submit("/account/two-factor/setup", page="/account/two-factor")
        .headers["Location"]
        .startswith("/account/confirm")
    )


# Changing the email address


def test_changing_email_is_confirmed_from_the_new_address(client, make_client, outbox):
    user = make_user("old@example.com")
    client.log_in(user.email, PASSWORD)
    response = client.submit("/account/email", {"email": "New@Example.com"}, page="/account")
    assert response.status_code == 302
    assert b"We sent a link to new@example.com" in client.get("/account").data
    link = outbox.link_in_last("new@example.com")
    assert "Confirm your new email address" in outbox.last_to("new@example.com")["Subject"]
    # Nothing changes until the link is opened.
    make_client().log_in("old@example.com", PASSWORD)

    assert client.get(link).status_code == 302
    assert "was changed" in outbox.last_to("old@example.com")["Subject"]
    make_client().log_in("new@example.com", PASSWORD)
    assert make_client().submit("/login", {"email": "old@example.com", "password": PASSWORD}).status_code == 422
    again = client.get(link)
    assert again.status_code == 400
    assert b"already been used" in again.data
    assert "email_changed" in event_kinds(user.id)


def test_changing_to_an_address_with_an_account_reveals_nothing_and_changes_nothing(client, outbox):
    user = make_user()
    taken = make_user("taken@example.com")
    client.log_in(user.email, PASSWORD)
    response = client.submit("/account/email", {"email": taken.email}, page="/account")
    assert response.status_code == 302
    assert b"We sent a link to taken@example.com" in client.get("/account").data
    notice = outbox.last_to(taken.email)
    assert notice["Subject"] == "You already have a Multipost account"
    assert "/email/confirm/" not in notice.get_content()
    client.submit("/logout", page="/account")
    client.log_in(user.email, PASSWORD)


def test_email_change_bad_input(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    for value, message in (
        ("", b"Enter your email address."),
        ("not-an-address", b"Enter an email address like name@example.com."),
        (user.email.upper(), b"That is already your email address."),
        ("x" * 250 + "@example.com", b"Use at most 254 characters."),
    ):
        response = client.submit("/account/email", {"email": value}, page="/account")
        assert response.status_code == 422, value
        assert message in response.data


def test_a_forged_or_mangled_email_link_is_refused(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    response = client.get("/email/confirm/not-a-real-token")
    assert response.status_code == 400
    assert b"This link is not valid" in response.data


def test_changing_email_needs_a_recent_password(client, outbox):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    age_sessions(user.id, **STALE)
    response = client.submit("/account/email", {"email": "new@example.com"}, page="/account")
    assert response.headers["Location"].startswith("/account/confirm")
    assert outbox.to("new@example.com") == []


def test_api_tokens_ask_for_the_password_when_it_is_stale(client):
    from saas.api.models import ApiToken
    from tenants import tenant_session
    from tests.factories import make_api_token

    tenant, owner = make_workspace()
    make_api_token(tenant, owner)
    client.log_in(owner.email, PASSWORD)
    age_sessions(owner.id, **STALE)
    page = f"/w/{tenant.slug}/settings/api-tokens"
    with app_context(), tenant_session(tenant.id) as session:
        [token] = session.query(ApiToken).all()
    for path, data in (("", {"name": "Zapier", "scopes": "read"}), (f"/{token.id}/revoke", {})):
        response = client.submit(f"{page}{path}", data, page=page)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/account/confirm?next=")
    with app_context(), tenant_session(tenant.id) as session:  # nothing made, nothing revoked
        assert [(t.id, t.revoked_at) for t in session.query(ApiToken).all()] == [(token.id, None)]
