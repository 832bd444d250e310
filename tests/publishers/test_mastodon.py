"""MastodonPublisher against FakeMastodon over real HTTP: connect, publish, threads, media, faults."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, OutboundPost, ThreadPart
from publishers.errors import AuthRevoked, ConnectFailed, InvalidPost, OutcomeUnknown, RateLimited, TransientError
from publishers.http import server_origin
from publishers.mastodon import MastodonPublisher, plain_text
from publishers.oauth import new_pkce, new_state
from tests.fakes.mastodon import FakeMastodon

STATUSES = "/api/v1/statuses"
REDIRECT = "http://localhost/channels/mastodon/callback"


@dataclass(frozen=True)
class Channel:
    username: str
    credentials: Credentials


@pytest.fixture
def instance() -> Iterator[FakeMastodon]:
    with FakeMastodon(authorizing_username="bluebell") as fake:
        yield fake


@pytest.fixture
def publisher() -> Iterator[MastodonPublisher]:
    adapter = MastodonPublisher(
        {"timeout_seconds": "5", "allow_http": "1", "media_poll_seconds": "0.01", "media_wait_seconds": "2"}
    )
    yield adapter
    adapter.close()


@pytest.fixture
def channel(instance: FakeMastodon) -> Channel:
    account_id, token = instance.add_account("bluebell")
    return Channel("bluebell", Credentials(token, extra={"instance_url": instance.base_url, "account_id": account_id}))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "loaf.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return path


def requests(instance: FakeMastodon) -> list[tuple[str, str]]:
    return [(e.method, e.path) for e in instance.journal.entries()]


# -- connect ---------------------------------------------------------------------------------------------------------


def test_connect_registers_authorizes_with_pkce_and_reads_account_and_limits(publisher, instance):
    app = publisher.register_app(instance.base_url, REDIRECT)
    assert publisher.supports_pkce(instance.base_url)
    state, pkce = new_state(), new_pkce()

    url = publisher.authorization_url(app, REDIRECT, state, pkce.challenge)
    approved = httpx.get(url)  # the person approves on the instance, which sends them back to us
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert approved.status_code == 302 and callback["state"] == [state]
    credentials = publisher.exchange_code(app, REDIRECT, callback["code"][0], pkce.verifier)
    profile = publisher.profile(credentials)
    limits = publisher.instance_limits(instance.base_url)

    assert profile.handle == f"bluebell@{instance.host_name}"
    assert profile.remote_id.endswith(f"@{instance.host_name}")
    assert credentials.extra["instance_url"] == instance.base_url
    assert limits == {"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23}
    [authorize] = instance.journal.entries("GET", "/oauth/authorize")
    assert authorize.query["code_challenge_method"] == "S256"
    [token] = instance.journal.entries("POST", "/oauth/token")
    assert token.body["code_verifier"] == pkce.verifier and token.body["grant_type"] == "authorization_code"


def test_a_code_without_the_right_verifier_is_refused(publisher, instance):
    app = publisher.register_app(instance.base_url, REDIRECT)
    pkce = new_pkce()
    approved = httpx.get(publisher.authorization_url(app, REDIRECT, "s", pkce.challenge))
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]

    with pytest.raises(ConnectFailed, match="invalid"):
        publisher.exchange_code(app, REDIRECT, code, new_pkce().verifier)


def test_instance_without_pkce_support_is_detected(publisher):
    with FakeMastodon(pkce=False) as old_instance:
        assert publisher.supports_pkce(old_instance.base_url) is False


def test_server_address_is_normalised_and_http_refused_outside_development():
    assert server_origin("Mastodon.Social") == "https://mastodon.social"
    assert server_origin("@alice@fosstodon.org") == "https://fosstodon.org"
    assert server_origin("http://127.0.0.1:8080/", allow_http=True) == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="https"):
        server_origin("http://example.social")


# -- publishing ------------------------------------------------------------------------------------------------------


def test_publish_text_sends_one_status_with_the_part_key(publisher, instance, channel):
    result = publisher.publish(OutboundPost("Fresh loaves at 8", language="en"), channel.credentials, "k1")

    [status] = instance.statuses("bluebell")
    assert result.remote_id == status.id
    assert result.url == f"{instance.base_url}/@bluebell/{status.id}"
    assert requests(instance) == [("POST", STATUSES)]
    [entry] = instance.journal.entries()
    assert entry.headers["idempotency-key"] == "k1:0"
    assert entry.body == {"status": "Fresh loaves at 8", "language": "en"}
    assert entry.response_headers["X-RateLimit-Limit"] == "300"


def test_images_are_uploaded_with_alt_text_and_attached(publisher, instance, channel, image):
    post = OutboundPost(
        "Two loaves",
        media=(Media(str(image), "image/png", "A sourdough loaf"), Media(str(image), "image/png", "A rye loaf")),
        content_warning="Carbs",
        visibility="unlisted",
    )

    publisher.publish(post, channel.credentials, "k1")

    assert requests(instance) == [("POST", "/api/v2/media"), ("POST", "/api/v2/media"), ("POST", STATUSES)]
    uploads = instance.journal.entries("POST", "/api/v2/media")
    assert [u.body["description"] for u in uploads] == ["A sourdough loaf", "A rye loaf"]
    assert uploads[0].body["file"]["content_type"] == "image/png"
    [status] = instance.statuses()
    assert [instance.media(m).description for m in status.media_ids] == ["A sourdough loaf", "A rye loaf"]
    assert (status.spoiler_text, status.visibility) == ("Carbs", "unlisted")


def test_video_still_processing_is_waited_for_before_posting(publisher, instance, channel, tmp_path):
    video = tmp_path / "oven.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    instance.media_processing_polls = 1  # plus the one every video gets

    publisher.publish(OutboundPost("Oven tour", media=(Media(str(video), alt="Our oven"),)), channel.credentials, "k1")

    upload = instance.journal.entries("POST", "/api/v2/media")[0]
    assert upload.status == 202
    polls = instance.journal.entries("GET", "/api/v1/media/")
    assert [p.status for p in polls] == [206, 206, 200]
    assert len(instance.statuses()) == 1


def test_media_that_never_finishes_processing_is_transient_and_posts_nothing(publisher, instance, channel, image):
    instance.media_processing_polls = 10_000

    with pytest.raises(TransientError, match="still processing"):
        publisher.publish(OutboundPost("Soon", media=(Media(str(image), alt="x"),)), channel.credentials, "k1")

    assert instance.statuses() == []


def test_three_part_thread_chains_replies_with_one_key_per_part(publisher, instance, channel):
    post = OutboundPost("1/3 Our week", thread=(ThreadPart("2/3 Monday: rye"), ThreadPart("3/3 Friday: stollen")))

    result = publisher.publish(post, channel.credentials, "k1")

    first, second, third = instance.statuses()
    assert result.remote_id == first.id
    assert (second.in_reply_to_id, third.in_reply_to_id) == (first.id, second.id)
    assert (first.visibility, second.visibility) == ("public", "unlisted")
    posts = instance.journal.entries("POST", STATUSES)
    assert [p.headers["idempotency-key"] for p in posts] == ["k1:0", "k1:1", "k1:2"]
    assert requests(instance) == [("POST", STATUSES)] * 3


def test_a_thread_retried_after_a_lost_reply_replays_the_parts_that_went_out(publisher, instance, channel):
    post = OutboundPost("1/3", thread=(ThreadPart("2/3"), ThreadPart("3/3")))
    instance.controls.add_fault("commit_then_drop", method="POST", path=STATUSES)  # the first part's answer is lost

    with pytest.raises(OutcomeUnknown):
        publisher.publish(post, channel.credentials, "k1")
    publisher.publish(post, channel.credentials, "k1")

    assert [s.text for s in instance.statuses()] == ["1/3", "2/3", "3/3"]
    assert instance.duplicates() == {}
    outcomes = [(e.headers["idempotency-key"], e.outcome) for e in instance.journal.entries("POST", STATUSES)]
    assert outcomes == [("k1:0", "committed"), ("k1:0", "replayed"), ("k1:1", "committed"), ("k1:2", "committed")]


def test_delete_removes_the_status_and_a_second_delete_is_fine(publisher, instance, channel):
    result = publisher.publish(OutboundPost("Gone soon"), channel.credentials, "k1")

    publisher.delete(result.remote_id, channel.credentials)
    publisher.delete(result.remote_id, channel.credentials)

    assert instance.statuses() == []
    deleted = ("DELETE", f"{STATUSES}/{result.remote_id}")
    assert requests(instance) == [("POST", STATUSES), deleted, deleted]
    assert [e.status for e in instance.journal.entries("DELETE")] == [200, 404]


def test_find_published_reads_back_the_post_by_its_text(publisher, instance, channel):
    since = datetime.now(UTC) - timedelta(minutes=1)
    text = "Line one & <two>\nsee https://bluebell.example/menu"
    made = publisher.publish(OutboundPost(text), channel.credentials, "k1")
    publisher.publish(OutboundPost("Something else"), channel.credentials, "k2")

    found = publisher.find_published(OutboundPost(text), channel.credentials, "k1", since)
    missing = publisher.find_published(OutboundPost("Never posted"), channel.credentials, "k3", since)

    assert found is not None and found.remote_id == made.remote_id
    assert missing is None
    assert plain_text("<p>a &amp; b</p><p>c<br />d</p>") == "a & b\nc\nd"


# -- errors ----------------------------------------------------------------------------------------------------------


def test_too_long_text_is_refused_with_mastodons_message(publisher, instance, channel):
    with pytest.raises(InvalidPost, match="Text character limit of 500 exceeded"):
        publisher.publish(OutboundPost("x" * 501), channel.credentials, "k1")


def test_revoked_token_means_reconnect(publisher, instance, channel):
    instance.revoke_account("bluebell")
    with pytest.raises(AuthRevoked):
        publisher.publish(OutboundPost("Hello"), channel.credentials, "k1")
    with pytest.raises(AuthRevoked):
        publisher.refresh(channel.credentials)  # Mastodon tokens cannot be renewed


def test_rate_limit_reports_the_iso_reset(publisher, instance, channel):
    instance.rates.set_limit(1, timedelta(minutes=5))
    publisher.publish(OutboundPost("One"), channel.credentials, "k1")

    with pytest.raises(RateLimited) as limited:
        publisher.publish(OutboundPost("Two"), channel.credentials, "k2")

    reset = limited.value.reset_at
    assert timedelta(minutes=4) < reset - datetime.now(UTC) <= timedelta(minutes=5)
    assert limited.value.scope == "channel"


def test_server_error_after_sending_is_outcome_unknown(publisher, instance, channel):
    instance.controls.add_fault("status", method="POST", path=STATUSES, status=500, body={"error": "boom"})
    with pytest.raises(OutcomeUnknown):
        publisher.publish(OutboundPost("Hello"), channel.credentials, "k1")


def test_instance_limits_drive_validation(publisher):
    long_text = "y" * 600
    assert publisher.validate(OutboundPost(long_text)) != []
    assert publisher.validate(OutboundPost(long_text), {"max_characters": 1000}) == []
    too_many = OutboundPost("Pics", media=tuple(Media(f"/tmp/{n}.png") for n in range(3)))
    assert publisher.validate(too_many, {"max_media_attachments": 2}) == ["Mastodon allows at most 2 images."]
