"""XPublisher against FakeX over real HTTP: connect, refresh, publish, read-back, rate limits, revoked tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, OutboundPost, ThreadPart
from publishers.errors import AuthExpired, AuthRevoked, ConnectFailed, OutcomeUnknown, RateLimited
from publishers.oauth import new_pkce, new_state
from publishers.x import XPublisher
from tests.fakes.x import CLIENT_ID, CLIENT_SECRET, FakeX

REDIRECT = "http://localhost/channels/x/callback"
TWEETS = "/2/tweets"


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with FakeX(authorizing_username="bluebell") as server:
        yield server


@pytest.fixture
def publisher(fake: FakeX) -> Iterator[XPublisher]:
    adapter = XPublisher(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_url": fake.base_url,
            "authorize_url": f"{fake.base_url}/i/oauth2/authorize",
            "timeout_seconds": "5",
            "media_poll_seconds": "0.01",
        }
    )
    yield adapter
    adapter.close()


def credentials_for(fake: FakeX, username: str) -> Credentials:
    user_id, access, refresh = fake.add_account(username)
    expires = datetime.now(UTC) + timedelta(hours=2)
    return Credentials(access, refresh, expires, {"user_id": user_id, "username": username})


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "loaf.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return path


def test_connect_with_pkce_and_state_reads_the_account(publisher, fake):
    state, pkce = new_state(), new_pkce()
    approved = httpx.get(publisher.authorization_url(REDIRECT, state, pkce.challenge))
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert callback["state"] == [state]

    credentials = publisher.exchange_code(REDIRECT, callback["code"][0], pkce.verifier)

    assert credentials.refresh_token and credentials.expires_at > datetime.now(UTC) + timedelta(minutes=110)
    profile = publisher.profile(credentials)
    assert (profile.handle, profile.remote_id) == ("bluebell", credentials.extra["user_id"])


def test_a_code_without_its_pkce_verifier_is_refused(publisher, fake):
    pkce = new_pkce()
    approved = httpx.get(publisher.authorization_url(REDIRECT, new_state(), pkce.challenge))
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]

    with pytest.raises(ConnectFailed, match="X refused the sign-in"):
        publisher.exchange_code(REDIRECT, code, new_pkce().verifier)


def test_refresh_rotates_and_the_old_refresh_token_is_dead(publisher, fake):
    old = credentials_for(fake, "bluebell")

    new = publisher.refresh(old)

    assert new.refresh_token != old.refresh_token and new.extra == old.extra
    publisher.publish(OutboundPost("Fresh token"), new, "k1")
    with pytest.raises(AuthRevoked):
        publisher.refresh(old)


def test_a_token_about_to_expire_is_refreshed_before_anything_is_sent(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    stale = Credentials(credentials.access_token, credentials.refresh_token, datetime.now(UTC), credentials.extra)

    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Not yet"), stale, "k1")

    assert fake.journal.entries("POST", TWEETS) == []


def test_publishes_a_thread_with_an_image(publisher, fake, image):
    credentials = credentials_for(fake, "bluebell")
    post = OutboundPost(
        "1/2 Bread", media=(Media(str(image), "image/png", "A loaf"),), thread=(ThreadPart("2/2 Rolls"),)
    )

    result = publisher.publish(post, credentials, "k1")

    first, second = fake.posts("bluebell")
    assert result.remote_id == first.id and result.url.endswith(f"/bluebell/status/{first.id}")
    assert len(first.media_ids) == 1 and second.reply_to == first.id


def test_commit_then_drop_is_unknown_and_read_back_finds_the_one_post(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    since = datetime.now(UTC) - timedelta(minutes=2)
    fake.controls.add_fault("commit_then_drop", method="POST", path=TWEETS)

    with pytest.raises(OutcomeUnknown):
        publisher.publish(OutboundPost("Lost in the post"), credentials, "k1")
    found = publisher.find_published(OutboundPost("Lost in the post"), credentials, "k1", since)

    [tweet] = fake.posts()
    assert found is not None and found.remote_id == tweet.id
    assert publisher.find_published(OutboundPost("Never sent"), credentials, "k2", since) is None


def test_read_back_of_a_thread_cut_short_finds_nothing(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    since = datetime.now(UTC) - timedelta(minutes=2)
    publisher.publish(OutboundPost("1/2 Bread"), credentials, "k0")  # only the first part went out
    publisher.publish(OutboundPost("2/2 Rolls"), credentials, "k1")  # same text, but not a reply to it

    thread = OutboundPost("1/2 Bread", thread=(ThreadPart("2/2 Rolls"),))
    assert publisher.find_published(thread, credentials, "k2", since) is None
    assert publisher.find_published(OutboundPost("1/2 Bread"), credentials, "k0", since) is not None


def test_read_back_finds_a_whole_thread(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    since = datetime.now(UTC) - timedelta(minutes=2)
    thread = OutboundPost("1/2 Bread", thread=(ThreadPart("2/2 Rolls"),))
    published = publisher.publish(thread, credentials, "k1")

    found = publisher.find_published(thread, credentials, "k1", since)

    assert found is not None and found.remote_id == published.remote_id


def test_per_user_window_pauses_the_channel_until_the_epoch_reset(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    fake.rates.set_limit(0, timedelta(minutes=15))

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Slow down"), credentials, "k1")

    [entry] = fake.journal.entries("POST", TWEETS)
    assert caught.value.scope == "channel"
    assert caught.value.reset_at == datetime.fromtimestamp(int(entry.response_headers["x-rate-limit-reset"]), UTC)


def test_the_users_24_hour_cap_waits_for_its_own_reset(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    fake.user_daily.set_limit(0, timedelta(hours=24))

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Enough for today"), credentials, "k1")

    [entry] = fake.journal.entries("POST", TWEETS)
    assert caught.value.scope == "channel" and "24-hour" in caught.value.message
    assert caught.value.reset_at.timestamp() == int(entry.response_headers["x-user-limit-24hour-reset"])


def test_a_spent_app_cap_pauses_every_x_channel(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    fake.app_daily.set_limit(0, timedelta(hours=24))

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Capped"), credentials, "k1")

    assert caught.value.scope == "app"


def test_a_revoked_token_needs_a_reconnect(publisher, fake):
    credentials = credentials_for(fake, "bluebell")
    fake.revoke_account("bluebell")

    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Anyone?"), credentials, "k1")
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.refresh(credentials)
    assert fake.posts() == []


def test_text_over_280_weighted_characters_is_refused_before_scheduling(publisher):
    assert publisher.validate(OutboundPost("漢" * 141))  # CJK weighs 2
    assert publisher.validate(OutboundPost("a" * 280)) == []
