"""ThreadsPublisher against FakeThreads over real HTTP: connect, refresh, containers, thread chains, quota."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, MemoryCheckpoints, OutboundPost, ThreadPart
from publishers.errors import AuthRevoked, ConnectFailed, OutcomeUnknown, RateLimited
from publishers.oauth import new_state
from publishers.threads import ThreadsPublisher
from tests.fakes.graph import CLIENT_ID, CLIENT_SECRET, MediaHost
from tests.fakes.threads import FakeThreads

REDIRECT = "http://localhost/channels/threads/callback"


@pytest.fixture
def fake() -> Iterator[FakeThreads]:
    with FakeThreads(authorizing_user="bluebell") as server:
        yield server


@pytest.fixture
def publisher(fake: FakeThreads) -> Iterator[ThreadsPublisher]:
    adapter = ThreadsPublisher(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "graph_url": fake.base_url,
            "authorize_url": f"{fake.base_url}/oauth/authorize",
            "timeout_seconds": "5",
            "media_poll_seconds": "0.02",
        }
    )
    yield adapter
    adapter.close()


def account(fake: FakeThreads, username: str = "bluebell") -> Credentials:
    user_id, token = fake.add_account(username)
    return Credentials(token, None, datetime.now(UTC) + timedelta(days=59), {"user_id": user_id})


def test_connect_trades_the_code_for_a_long_lived_token(publisher, fake):
    state = new_state()
    approved = httpx.get(publisher.authorization_url(REDIRECT, state, None))
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert callback["state"] == [state]

    credentials = publisher.exchange_code(REDIRECT, callback["code"][0], None)

    assert credentials.expires_at > datetime.now(UTC) + timedelta(days=59)
    assert publisher.profile(credentials).handle == "bluebell"
    with pytest.raises(ConnectFailed):
        publisher.exchange_code(REDIRECT, callback["code"][0], None)  # a code works once


def test_refresh_gives_a_new_60_day_token(publisher, fake):
    credentials = account(fake)

    fresh = publisher.refresh(credentials)

    assert fresh.access_token != credentials.access_token and fresh.extra == credentials.extra
    publisher.publish(OutboundPost("Renewed"), fresh, "k1")


def test_publishes_a_thread_with_an_image_each_part_replying_to_the_last(publisher, fake):
    with MediaHost() as host:
        image = Media(host.add("loaf.jpg", b"\xff\xd8\xff" + b"\x00" * 32, "image/jpeg"), "image/jpeg", "A loaf")
        post = OutboundPost("1/2 Bread", media=(image,), thread=(ThreadPart("2/2 Rolls"),))
        result = publisher.publish(post, account(fake), "k1")

    first, second = fake.posts()
    assert result.remote_id == first.id and second.reply_to == first.id
    assert fake.containers[first.container].fields["media_type"] == "IMAGE"


def test_commit_then_drop_resumes_from_the_stored_container(publisher, fake):
    credentials = account(fake)
    checkpoints = MemoryCheckpoints()
    publish_path = f"/v1.0/{credentials.extra['user_id']}/threads_publish"
    fake.controls.add_fault("commit_then_drop", method="POST", path=publish_path)

    with pytest.raises(OutcomeUnknown):
        publisher.publish_resumable(OutboundPost("Lost in the post"), credentials, "k1", checkpoints)
    result = publisher.publish_resumable(OutboundPost("Lost in the post"), credentials, "k1", checkpoints)

    [post] = fake.posts()
    assert result.remote_id == post.id and len(fake.journal.entries("POST", publish_path)) == 1


def test_the_publish_race_media_not_found_is_retried_safely(publisher, fake):
    credentials = account(fake)
    publish_path = f"/v1.0/{credentials.extra['user_id']}/threads_publish"
    error = {"error": {"message": "The requested resource does not exist", "code": 24, "error_subcode": 4279009}}
    fake.controls.add_fault("status", method="POST", path=publish_path, status=400, body=error)

    publisher.publish(OutboundPost("Eventually"), credentials, "k1")

    assert len(fake.posts()) == 1


def test_a_spent_quota_waits(publisher, fake):
    credentials = account(fake)
    fake.quota_total = 0
    with pytest.raises(RateLimited, match="allows 0 posts"):
        publisher.publish(OutboundPost("Too many"), credentials, "k1")
    assert fake.containers == {}


def test_throttling_code_4_pauses_the_whole_app(publisher, fake):
    fake.throttle(4, minutes=5)
    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Slow"), account(fake), "k1")
    assert caught.value.scope == "app"


def test_emoji_count_their_bytes(publisher):
    assert publisher.validate(OutboundPost("🍞" * 125)) == []  # 4 bytes each: 500
    assert publisher.validate(OutboundPost("🍞" * 126))


def test_a_revoked_token_needs_a_reconnect(publisher, fake):
    credentials = account(fake)
    fake.tokens.revoke(credentials.extra["user_id"])
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.publish(OutboundPost("Anyone?"), credentials, "k1")
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.refresh(credentials)


def test_delete(publisher, fake):
    credentials = account(fake)
    result = publisher.publish(OutboundPost("Gone soon"), credentials, "k1")
    publisher.delete(result.remote_id, credentials)
    assert fake.posts() == []
