"""Two-factor authentication: set-up, the second log-in step, replay, recovery codes, workspace requirement."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from saas import db
from saas.crypto import DecryptionError, new_key
from saas.identity import twofactor
from saas.identity.models import RecoveryCode, TwoFactorCredential
from tenants.models import Role, TenantKind
from tests.factories import (
    PASSWORD,
    add_member,
    app_context,
    enable_two_factor,
    encryption_keys,
    make_tenant,
    make_user,
    make_workspace,
)
from tests.identity_helpers import code_for, event_kinds, log_in_with_code, wrong_code


def test_setting_up_needs_a_right_code_and_shows_recovery_codes_once(client, outbox):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    response = client.submit("/account/two-factor/setup", page="/account/two-factor")
    assert response.headers["Location"].startswith("/account/two-factor/confirm")
    page = client.get("/account/two-factor/confirm").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code, inline and script-free
    secret = re.search(r'<code class="secret-key">([A-Z2-7]+)</code>', page).group(1)

    wrong = client.submit(
        "/account/two-factor/confirm", {"code": wrong_code(secret)}, page="/account/two-factor/confirm"
    )
    assert wrong.status_code == 422
    assert b"That code is not right" in wrong.data
    with app_context(), db.new_session() as session:
        assert not twofactor.is_enabled(session, user.id)

    right = client.submit("/account/two-factor/confirm", {"code": code_for(secret)}, page="/account/two-factor/confirm")
    assert right.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", right.get_data(as_text=True))
    assert len(set(codes)) == 10
    assert right.headers["Cache-Control"] == "no-store"
    status = client.get("/account/two-factor").get_data(as_text=True)
    assert "You have 10 unused recovery codes" in status
    assert not any(code in status for code in codes)  # shown once, never again
    # At rest: the secret is sealed, the recovery codes are digests.
    with app_context(), db.new_session() as session:
        sealed = session.get(TwoFactorCredential, user.id).secret_sealed
        stored = session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert secret not in sealed
    assert not {c.replace("-", "") for c in codes} & set(stored)
    assert "two_factor_enabled" in event_kinds(user.id)
    notice = outbox.last_to(user.email)
    assert notice["Subject"] == "Multipost security notice: Two-factor authentication was turned on"
    assert not any(code in notice.get_content() for code in codes)


def test_login_asks_for_the_code_and_grants_nothing_before_it(client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    first = client.submit("/login", {"email": user.email, "password": PASSWORD})
    assert first.headers["Location"] == "/login/two-factor"
    assert client.get("/account").status_code == 302  # half logged in is not logged in
    assert client.get("/account/workspaces").status_code == 302

    wrong = client.submit("/login/two-factor", {"code": wrong_code(secret)}, page="/login/two-factor")
    assert wrong.status_code == 422
    assert b"That code is not right" in wrong.data
    assert client.get("/account").status_code == 302

    right = client.submit("/login/two-factor", {"code": code_for(secret)}, page="/login/two-factor")
    assert right.status_code == 302
    assert client.get("/account").status_code == 200
    assert event_kinds(user.id) == ["two_factor_enabled", "two_factor_failed", "login"]


def test_a_code_from_the_step_before_or_after_is_accepted(make_client):
    user = make_user()
    secret, _ = enable_two_factor(user)  # confirmed with the step before now
    assert log_in_with_code(make_client(), user.email, code_for(secret, 1), is_code=True).status_code == 302
    # Two steps away is too far.
    assert log_in_with_code(make_client(), user.email, code_for(secret, 3), is_code=True).status_code == 422


def test_a_code_cannot_be_used_twice(make_client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    code = code_for(secret)
    assert log_in_with_code(make_client(), user.email, code, is_code=True).status_code == 302
    replay = log_in_with_code(make_client(), user.email, code, is_code=True)
    assert replay.status_code == 422
    assert b"already been used" in replay.data
    # Nor an older one, though still inside the tolerance.
    older = log_in_with_code(make_client(), user.email, code_for(secret, -1), is_code=True)
    assert older.status_code == 422


def _second_steps_at_once(browsers, code):
    tokens = [browser.csrf_token("/login/two-factor") for browser in browsers]

    def send(browser, token):
        return browser.post("/login/two-factor", data={"code": code, "csrf_token": token}).status_code

    with ThreadPoolExecutor(len(browsers)) as pool:
        return sorted(pool.map(send, browsers, tokens))


def test_two_log_ins_racing_with_one_code_let_only_one_in(app, make_client):
    app.config["TWO_FACTOR_LIMIT_PER_ACCOUNT"] = "20 per 5 minutes"
    try:
        user = make_user()
        secret, codes = enable_two_factor(user)
        for code in (code_for(secret), codes[0]):
            browsers = [make_client() for _ in range(4)]
            for browser in browsers:
                browser.submit("/login", {"email": user.email, "password": PASSWORD})
            assert _second_steps_at_once(browsers, code) == [302, 422, 422, 422], code
    finally:
        app.config["TWO_FACTOR_LIMIT_PER_ACCOUNT"] = "5 per 5 minutes"


def test_a_recovery_code_works_once(make_client, outbox):
    user = make_user()
    _secret, codes = enable_two_factor(user)
    first = make_client()
    used = log_in_with_code(first, user.email, codes[0].upper(), is_code=True)  # as typed, any case
    assert used.status_code == 302
    assert b"9 left" in first.get(used.headers["Location"], follow_redirects=True).data
    again = log_in_with_code(make_client(), user.email, codes[0], is_code=True)
    assert again.status_code == 422
    assert b"not right or has already been used" in again.data
    assert log_in_with_code(make_client(), user.email, codes[1], is_code=True).status_code == 302
    assert event_kinds(user.id).count("recovery_code_used") == 2
    assert outbox.last_to(user.email)["Subject"] == "Multipost security notice: A recovery code was used to log in"


def test_the_half_logged_in_step_expires(app, client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    client.submit("/login", {"email": user.email, "password": PASSWORD})
    app.config["TWO_FACTOR_LOGIN_SECONDS"] = 0
    try:
        late = client.submit("/login/two-factor", {"code": code_for(secret)}, page="/login")
    finally:
        app.config["TWO_FACTOR_LOGIN_SECONDS"] = 300
    assert late.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_code_attempts_are_rate_limited(app, client):
    app.config["TWO_FACTOR_LIMIT_PER_ACCOUNT"] = "3 per 5 minutes"
    try:
        user = make_user()
        secret, _ = enable_two_factor(user)
        client.submit("/login", {"email": user.email, "password": PASSWORD})
        for _ in range(3):
            bad = client.submit("/login/two-factor", {"code": wrong_code(secret)}, page="/login/two-factor")
            assert bad.status_code == 422
        blocked = client.submit("/login/two-factor", {"code": code_for(secret)}, page="/login/two-factor")
        assert blocked.status_code == 429
        assert client.get("/account").status_code == 302
    finally:
        app.config["TWO_FACTOR_LIMIT_PER_ACCOUNT"] = "5 per 5 minutes"


def test_the_sealed_secret_only_opens_for_its_own_user(app):
    alice, mallory = make_user(), make_user()
    enable_two_factor(alice)
    enable_two_factor(mallory)
    with app_context(), db.new_session() as session:
        sealed = session.get(TwoFactorCredential, alice.id).secret_sealed
        session.get(TwoFactorCredential, mallory.id).secret_sealed = sealed
        session.commit()
        with pytest.raises(DecryptionError):
            twofactor.verify(session, mallory.id, "123456")


def test_new_recovery_codes_replace_the_old_and_turning_off_drops_the_step(make_client, outbox):
    user = make_user()
    secret, old_codes = enable_two_factor(user)
    browser = make_client()
    log_in_with_code(browser, user.email, secret)
    fresh = browser.submit("/account/two-factor/recovery-codes", page="/account/two-factor")
    new_codes = re.findall(r"<li><code>([a-z0-9-]{11})</code></li>", fresh.get_data(as_text=True))
    assert len(new_codes) == 10
    assert log_in_with_code(make_client(), user.email, old_codes[0], is_code=True).status_code == 422
    assert log_in_with_code(make_client(), user.email, new_codes[0], is_code=True).status_code == 302

    off = browser.submit("/account/two-factor/disable", page="/account/two-factor")
    assert off.status_code == 302
    plain = make_client().submit("/login", {"email": user.email, "password": PASSWORD})
    assert plain.headers["Location"] != "/login/two-factor"
    assert event_kinds(user.id)[-1] == "login"
    assert "recovery_codes_regenerated" in event_kinds(user.id)
    assert "two_factor_disabled" in event_kinds(user.id)
    notice = outbox.last_to(user.email)
    assert notice["Subject"] == "Multipost security notice: Two-factor authentication was turned off"
    assert "/reset" in notice.get_content()


def test_password_reset_link_does_not_skip_the_second_factor(client, outbox):
    user = make_user()
    secret, _ = enable_two_factor(user)
    client.submit("/reset", {"email": user.email}, page="/reset")
    link = outbox.link_in_last(user.email)
    new_password = "velvet-harbour-compass-7"
    done = client.submit(link, {"password": new_password, "confirm": new_password}, page=link)
    assert done.headers["Location"].startswith("/login")
    assert client.get("/account").status_code == 302
    first = client.submit("/login", {"email": user.email, "password": new_password})
    assert first.headers["Location"] == "/login/two-factor"


# Workspaces that require two-factor authentication


def _require_two_factor(client, tenant, owner, secret):
    log_in_with_code(client, owner.email, secret)
    response = client.submit(
        f"/w/{tenant.slug}/settings",
        {"name": tenant.name, "timezone": "UTC", "require_two_factor": "y"},
        page=f"/w/{tenant.slug}/settings",
    )
    assert response.status_code == 302, response.data


def test_a_workspace_that_requires_it_sends_a_member_without_it_to_set_up(client, make_client):
    tenant, owner = make_workspace(name="Strict Co")
    _require_two_factor(client, tenant, owner, enable_two_factor(owner)[0])
    member = make_user()
    add_member(tenant, member, Role.EDITOR)
    own_tenant, _ = make_workspace(name="Relaxed Co")
    add_member(own_tenant, member, Role.EDITOR)

    browser = make_client()
    browser.log_in(member.email, PASSWORD)
    sent = browser.get(f"/w/{tenant.slug}/posts")
    assert sent.status_code == 302
    assert sent.headers["Location"] == f"/account/two-factor?required={tenant.slug}"
    page = browser.get(sent.headers["Location"]).get_data(as_text=True)
    assert "Strict Co requires two-factor authentication" in page
    assert browser.get(f"/w/{own_tenant.slug}/calendar").status_code == 200  # other workspaces unaffected

    # Set up from there, and the last page leads back to the workspace.
    started = browser.submit(f"/account/two-factor/setup?required={tenant.slug}", page=sent.headers["Location"])
    setup_page = browser.get(started.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'<code class="secret-key">([A-Z2-7]+)</code>', setup_page).group(1)
    done = browser.submit(started.headers["Location"], {"code": code_for(secret)}, page=started.headers["Location"])
    assert f'href="/w/{tenant.slug}/calendar">I have saved them: go on to Strict Co' in done.get_data(as_text=True)
    assert browser.get(f"/w/{tenant.slug}/posts").status_code == 200


def test_owner_must_have_it_before_requiring_it(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    response = client.submit(
        f"/w/{tenant.slug}/settings",
        {"name": tenant.name, "timezone": "UTC", "require_two_factor": "y"},
        page=f"/w/{tenant.slug}/settings",
    )
    assert response.status_code == 422
    assert b"Turn on two-factor authentication for your own account first" in response.data
    assert client.get(f"/w/{tenant.slug}/calendar").status_code == 200


def test_an_agency_requirement_holds_its_staff_in_client_workspaces(client, make_client):
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    staff = make_user()
    add_member(agency, staff, Role.ADMIN)  # admins reach every client
    customer = make_tenant(name="Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency)
    _require_two_factor(client, agency, agency_owner, enable_two_factor(agency_owner)[0])

    browser = make_client()
    browser.log_in(staff.email, PASSWORD)
    sent = browser.get(f"/w/{customer.slug}/calendar")
    assert sent.headers["Location"] == f"/account/two-factor?required={customer.slug}"
    assert b"Bluebell Bakery requires two-factor authentication" in browser.get(sent.headers["Location"]).data
    enable_two_factor(staff)
    assert browser.get(f"/w/{customer.slug}/calendar").status_code == 200


def test_rotating_keys_reseals_the_secret_and_the_old_key_can_go(app, make_client):
    user = make_user()
    secret, _ = enable_two_factor(user)
    fresh = new_key()
    with encryption_keys(app, f"{fresh},{app.config['ENCRYPTION_KEYS']}"):
        result = app.test_cli_runner().invoke(args=["rotate-keys"])
        assert "Re-sealed 1 value(s)" in result.output
    with encryption_keys(app, fresh):
        assert log_in_with_code(make_client(), user.email, secret).status_code == 302


def test_members_without_it_are_told_when_a_workspace_starts_requiring_it(client, outbox):
    tenant, owner = make_workspace(name="Strict Co")
    secret, _codes = enable_two_factor(owner)
    careless, careful = make_user(), make_user()
    add_member(tenant, careless, Role.EDITOR)
    add_member(tenant, careful, Role.REVIEWER)
    enable_two_factor(careful)

    _require_two_factor(client, tenant, owner, secret)

    [mail] = outbox.to(careless.email)
    assert mail["Subject"] == "Strict Co now requires two-factor authentication"
    assert "http://localhost/account/two-factor" in mail.get_content()
    assert outbox.to(careful.email) == [] and outbox.to(owner.email) == []
    # Saving the settings again, still required, tells nobody again.
    client.submit(f"/w/{tenant.slug}/settings", {"name": "Strict Co", "timezone": "UTC", "require_two_factor": "y"},
                  page=f"/w/{tenant.slug}/settings")  # fmt: skip
    assert len(outbox.to(careless.email)) == 1
