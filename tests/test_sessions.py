"""Server-side sessions: listed and revocable, idle and absolute timeouts, remember-me, no fixation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask_login.utils import encode_cookie

from saas import db
from saas.identity.models import UserSession
from tests.factories import PASSWORD, app_context, make_user
from tests.identity_helpers import age_sessions, event_kinds, sessions_of

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _cookie(client):
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def _decoded(app, value):
    return app.session_interface.get_signing_serializer(app).loads(value)


def _log_in_from(client, user, agent, address, **extra):
    response = client.submit(
        "/login",
        {"email": user.email, "password": PASSWORD, **extra},
        headers={"User-Agent": agent},
        environ_base={"REMOTE_ADDR": address},
    )
    assert response.status_code == 302
    return response


def test_the_list_shows_each_device_with_its_address_and_this_one_marked(make_client):
    user = make_user(timezone="Europe/Berlin")
    laptop, phone = make_client(), make_client()
    _log_in_from(laptop, user, CHROME_ON_WINDOWS, "203.0.113.7")
    _log_in_from(phone, user, FIREFOX_ON_LINUX, "198.51.100.4")
    page = laptop.get("/account/sessions", headers={"User-Agent": CHROME_ON_WINDOWS}).get_data(as_text=True)
    assert "Chrome on Windows" in page and "Firefox on Linux" in page
    assert "203.0.113.7" in page and "198.51.100.4" in page
    assert page.count("This device") == 1
    assert page.index("Chrome on Windows") < page.index("This device") < page.index("Firefox on Linux")
    assert "Europe/Berlin" in page  # times name their zone


def test_revoking_a_session_ends_it_at_once(make_client):
    user = make_user()
    laptop, phone = make_client(), make_client()
    laptop.log_in(user.email, PASSWORD)
    phone.log_in(user.email, PASSWORD)
    assert phone.get("/account").status_code == 200
    phone_session = sessions_of(user.id)[1]
    response = laptop.submit(f"/account/sessions/{phone_session.id}/revoke", page="/account/sessions")
    assert response.headers["Location"] == "/account/sessions"
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 200
    assert "session_revoked" in event_kinds(user.id)


def test_revoking_all_others_keeps_this_one(make_client):
    user = make_user()
    browsers = [make_client() for _ in range(3)]
    for browser in browsers:
        browser.log_in(user.email, PASSWORD)
    browsers[0].submit("/account/sessions/revoke-others", page="/account/sessions")
    assert [b.get("/account").status_code for b in browsers] == [200, 302, 302]


def test_nobody_can_revoke_another_persons_session(make_client):
    victim, other = make_user(), make_user()
    victim_browser, attacker = make_client(), make_client()
    victim_browser.log_in(victim.email, PASSWORD)
    attacker.log_in(other.email, PASSWORD)
    [victim_session] = sessions_of(victim.id)
    response = attacker.submit(f"/account/sessions/{victim_session.id}/revoke", page="/account/sessions")
    assert response.status_code == 404
    assert sessions_of(victim.id)[0].revoked_at is None
    assert victim_browser.get("/account").status_code == 200


def test_an_idle_session_ends(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    age_sessions(user.id, last_seen_at=timedelta(hours=11, minutes=50))
    assert client.get("/account").status_code == 200  # still inside the 12 hours; seen again now
    age_sessions(user.id, last_seen_at=timedelta(hours=12, minutes=1))
    assert client.get("/account").status_code == 302


def test_a_busy_session_still_ends_at_the_absolute_timeout(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    [row] = sessions_of(user.id)
    assert row.expires_at - row.created_at == timedelta(days=7)
    age_sessions(user.id, expires_at=timedelta(seconds=1))
    assert client.get("/account").status_code == 302


def test_remember_me_lasts_thirty_days_idle_or_not_and_can_be_revoked(app, make_client):
    user = make_user()
    kept, plain = make_client(), make_client()
    kept.submit("/login", {"email": user.email, "password": PASSWORD, "remember": "y"})
    plain.log_in(user.email, PASSWORD)
    # The remembered cookie outlives the browser, for 30 days; the other ends with it.
    expires = kept.get_cookie("session").expires
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert plain.get_cookie("session").expires is None
    remembered, ordinary = sessions_of(user.id)
    assert (remembered.remember, ordinary.remember) == (True, False)
    assert remembered.expires_at - remembered.created_at == timedelta(days=30)

    age_sessions(user.id, last_seen_at=timedelta(days=3))
    assert kept.get("/account").status_code == 200  # idle does not end a remembered session
    assert plain.get("/account").status_code == 302

    plain.log_in(user.email, PASSWORD)
    plain.submit(f"/account/sessions/{remembered.id}/revoke", page="/account/sessions")
    assert kept.get("/account").status_code == 302


def test_remember_me_ends_after_thirty_days(client):
    user = make_user()
    client.submit("/login", {"email": user.email, "password": PASSWORD, "remember": "y"})
    age_sessions(user.id, expires_at=timedelta(seconds=1))
    assert client.get("/account").status_code == 302


def test_flask_logins_remember_cookie_cannot_log_anyone_in(app, client):
    user = make_user()
    with app.test_request_context():
        forged = encode_cookie(user.get_id())  # what flask-login would accept as "remember me"
    client.set_cookie("remember_token", forged)
    assert client.get("/account").status_code == 302


def test_logging_in_gives_a_new_session_id(app, make_client):
    """Session fixation: a cookie planted before log-in must not become a logged-in session."""
    user = make_user()
    attacker = make_client()
    attacker.get("/login")
    planted = _cookie(attacker)
    victim = make_client()
    victim.set_cookie("session", planted)
    victim.log_in(user.email, PASSWORD)
    after = _cookie(victim)
    assert after != planted
    assert "sid" not in _decoded(app, planted) and "sid" in _decoded(app, after)
    assert attacker.get("/account").status_code == 302

    # Logging in again in the same browser replaces its session too.
    victim.log_in(user.email, PASSWORD)
    assert _decoded(app, _cookie(victim))["sid"] != _decoded(app, after)["sid"]
    copy = make_client()
    copy.set_cookie("session", after)
    assert copy.get("/account").status_code == 302
    assert len([s for s in sessions_of(user.id) if s.revoked_at is None]) == 1


def test_logging_out_ends_the_session_on_the_server(make_client):
    user = make_user()
    browser = make_client()
    browser.log_in(user.email, PASSWORD)
    stolen = make_client()
    stolen.set_cookie("session", _cookie(browser))
    assert stolen.get("/account").status_code == 200
    browser.submit("/logout", page="/account")
    assert stolen.get("/account").status_code == 302  # the copy died with the session row
    assert sessions_of(user.id)[0].revoked_at is not None


def test_last_seen_is_written_at_most_once_a_minute(client):
    user = make_user()
    client.log_in(user.email, PASSWORD)
    first = sessions_of(user.id)[0].last_seen_at
    client.get("/account")
    assert sessions_of(user.id)[0].last_seen_at == first
    age_sessions(user.id, last_seen_at=timedelta(minutes=2))
    client.get("/account")
    assert datetime.now(UTC) - sessions_of(user.id)[0].last_seen_at < timedelta(minutes=1)


def test_log_ins_and_failures_are_recorded(client):
    user = make_user()
    client.submit("/login", {"email": user.email, "password": "not-the-password"})
    client.submit("/login", {"email": "nobody@example.com", "password": "not-the-password"})
    client.log_in(user.email, PASSWORD)
    client.submit("/logout", page="/account")
    assert event_kinds(user.id) == ["login_failed", "login", "logout"]
    assert event_kinds(None) == ["login_failed"]
    client.log_in(user.email, PASSWORD)
    page = client.get("/account/sessions").get_data(as_text=True)
    activity = page[page.index("Recent security activity") :]
    assert activity.index("Logged in") < activity.index("Logged out") < activity.index("Failed log-in")


def test_pruning_deletes_only_sessions_that_ended_long_ago(app, make_client):
    user = make_user()
    for _ in range(3):
        make_client().log_in(user.email, PASSWORD)
    old, recent, live = sessions_of(user.id)
    with app_context(), db.new_session() as session:
        session.get(UserSession, old.id).revoked_at = datetime.now(UTC) - timedelta(days=31)
        session.get(UserSession, recent.id).revoked_at = datetime.now(UTC) - timedelta(days=1)
        session.commit()
    result = app.test_cli_runner().invoke(args=["prune-sessions"])
    assert "Deleted 1 ended session(s)." in result.output
    assert [s.id for s in sessions_of(user.id)] == [recent.id, live.id]


def test_the_clock_prunes_ended_sessions_once_an_hour(app, make_client, redis_conn):
    from saas import dispatcher

    user = make_user()
    make_client().log_in(user.email, PASSWORD)
    make_client().log_in(user.email, PASSWORD)
    old, live = sessions_of(user.id)
    with app_context(), db.new_session() as session:
        session.get(UserSession, old.id).revoked_at = datetime.now(UTC) - timedelta(days=31)
        session.commit()
    redis_conn.delete(dispatcher.HOUSEKEEPING_KEY)

    with app.app_context():
        dispatcher.tick(redis_conn)

    assert [s.id for s in sessions_of(user.id)] == [live.id]
    assert redis_conn.get(dispatcher.HOUSEKEEPING_KEY) is not None  # not again within the hour
