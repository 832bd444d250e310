"""InstagramPublisher against FakeInstagram over real HTTP: accounts via Pages, containers, quota, refresh."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, MemoryCheckpoints, OutboundPost
from publishers.errors import AuthExpired, AuthRevoked, InvalidPost, OutcomeUnknown, RateLimited
from publishers.instagram import InstagramPublisher
from publishers.oauth import new_state
from tests.fakes.graph import CLIENT_ID, CLIENT_SECRET, MediaHost
from tests.fakes.instagram import FakeInstagram

REDIRECT = "http://localhost/channels/instagram/callback"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def fake() -> Iterator[FakeInstagram]:
    with FakeInstagram(authorizing_user="bluebell") as server:
        yield server


@pytest.fixture
def media_host() -> Iterator[MediaHost]:
    with MediaHost() as host:
        yield host


@pytest.fixture
def publisher(fake: FakeInstagram) -> Iterator[InstagramPublisher]:
    adapter = InstagramPublisher(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "graph_url": fake.base_url,
            "dialog_url": fake.base_url,
            "timeout_seconds": "5",
            "media_poll_seconds": "0.02",
            "media_wait_seconds": "3",
        }
    )
    yield adapter
    adapter.close()


def account(fake: FakeInstagram, username: str = "bluebell.bakery") -> Credentials:
    ig_id = fake.add_account(username, "bluebell")
    expires = datetime.now(UTC) + timedelta(days=59)
    return Credentials(fake.user_token("bluebell"), None, expires, {"ig_user_id": ig_id, "username": username})


def photo_post(host: MediaHost, caption: str = "Fresh rye", name: str = "rye.jpg") -> OutboundPost:
    return OutboundPost(caption, media=(Media(host.add(name, JPEG, "image/jpeg"), "image/jpeg"),))


def test_connect_offers_the_instagram_accounts_linked_to_the_persons_pages(publisher, fake):
    fake.add_account("bluebell.bakery", "bluebell")
    fake.add_page("Page without Instagram", "bluebell")
    state = new_state()
    approved = httpx.get(publisher.authorization_url(REDIRECT, state, None))
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert callback["state"] == [state] and "instagram_content_publish" in approved.request.url.params["scope"]

    [found] = publisher.accounts(publisher.exchange_code(REDIRECT, callback["code"][0], None))

    assert found.profile.handle == "bluebell.bakery" and found.kind == "Instagram account"
    assert found.credentials.extra["ig_user_id"] == found.profile.remote_id


def test_refresh_trades_the_token_for_a_new_long_lived_one(publisher, fake):
    credentials = account(fake)
    soon = Credentials(credentials.access_token, None, datetime.now(UTC) + timedelta(days=1), credentials.extra)

    with pytest.raises(AuthExpired):  # renewed a week before it lapses, before anything is sent
        publisher.publish(OutboundPost("x", media_urls=("https://example.invalid/a.jpg",)), soon, "k1")
    fresh = publisher.refresh(soon)

    assert fresh.access_token != credentials.access_token and fresh.extra == credentials.extra
    assert fresh.expires_at > datetime.now(UTC) + timedelta(days=59)


def test_publishes_an_image_through_a_container(publisher, fake, media_host):
    credentials = account(fake)
    checkpoints = MemoryCheckpoints()

    result = publisher.publish_resumable(photo_post(media_host), credentials, "k1", checkpoints)

    [post] = fake.posts()
    assert result.remote_id == post.id and result.url.endswith(f"/p/{post.id}/")
    assert checkpoints.values == {"container:0": post.container, "media:0": post.id}
    assert [e.path.rsplit("/", 1)[-1] for e in fake.journal.entries("POST")] == ["media", "media_publish"]


def test_a_carousel_publishes_its_children_in_one_post(publisher, fake, media_host):
    credentials = account(fake)
    post = OutboundPost(
        "Three loaves",
        media=tuple(Media(media_host.add(f"{n}.jpg", JPEG, "image/jpeg"), "image/jpeg") for n in range(3)),
    )

    publisher.publish(post, credentials, "k1")

    [published] = fake.posts()
    assert fake.containers[published.container].fields["media_type"] == "CAROUSEL"
    assert len(fake.containers[published.container].fields["children"].split(",")) == 3


def test_commit_then_drop_on_publish_reads_the_container_and_never_publishes_twice(publisher, fake, media_host):
    credentials = account(fake)
    checkpoints = MemoryCheckpoints()
    fake.controls.add_fault(
        "commit_then_drop", method="POST", path=f"/v24.0/{credentials.extra['ig_user_id']}/media_publish"
    )

    with pytest.raises(OutcomeUnknown):
        publisher.publish_resumable(photo_post(media_host), credentials, "k1", checkpoints)
    result = publisher.publish_resumable(photo_post(media_host), credentials, "k1", checkpoints)

    [post] = fake.posts()
    assert result.remote_id == post.id
    assert len(fake.journal.entries("POST", f"/v24.0/{credentials.extra['ig_user_id']}/media_publish")) == 1
    assert len(fake.containers) == 1  # the stored container was read, not made again


def test_a_container_that_fails_processing_fails_with_metas_reason(publisher, fake, media_host):
    credentials = account(fake)
    fake.fail_next = "2207005: The image format is not supported."

    with pytest.raises(InvalidPost, match="image format is not supported"):
        publisher.publish(photo_post(media_host), credentials, "k1")
    assert fake.posts() == []


def test_media_meta_cannot_fetch_is_refused(publisher, fake, media_host):
    with pytest.raises(InvalidPost, match="Media download has failed"):
        publisher.publish(
            OutboundPost("Gone", media_urls=(f"{media_host.base_url}/media/missing.jpg",)), account(fake), "k1"
        )


def test_a_spent_quota_read_from_the_api_waits_for_the_window(publisher, fake, media_host):
    credentials = account(fake)
    fake.quota_total = 2
    publisher.publish(photo_post(media_host, "one", "1.jpg"), credentials, "k1")
    publisher.publish(photo_post(media_host, "two", "2.jpg"), credentials, "k2")
    oldest = fake.posts()[0].created_at

    with pytest.raises(RateLimited, match="allows 2 posts per 24 hours") as caught:
        publisher.publish(photo_post(media_host, "three", "3.jpg"), credentials, "k3")

    assert caught.value.scope == "channel"
    assert abs(caught.value.reset_at - (oldest + timedelta(hours=24))) < timedelta(seconds=2)
    assert len(fake.containers) == 2  # no container was made for the post that waits


def test_throttling_code_17_pauses_the_channel(publisher, fake, media_host):
    fake.throttle(17, minutes=3)
    with pytest.raises(RateLimited) as caught:
        publisher.publish(photo_post(media_host), account(fake), "k1")
    assert caught.value.scope == "channel"


def test_a_post_without_media_is_refused_before_scheduling(publisher):
    assert "Instagram needs at least one image or video." in publisher.validate(OutboundPost("Just words"))


def test_a_revoked_token_needs_a_reconnect(publisher, fake, media_host):
    credentials = account(fake)
    fake.tokens.revoke(fake.person("bluebell"))

    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.publish(photo_post(media_host), credentials, "k1")
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.refresh(credentials)


# -- first comment ---------------------------------------------------------------------------------------------------


def test_the_first_comment_goes_under_the_media_once_across_attempts(publisher, fake, media_host):
    credentials = account(fake)
    checkpoints = MemoryCheckpoints()
    post = photo_post(media_host)
    post = OutboundPost(post.text, media=post.media, first_comment="Recipe in bio")

    result = publisher.publish_resumable(post, credentials, "k1", checkpoints)
    again = publisher.publish_resumable(post, credentials, "k1", checkpoints)  # a retry finds both checkpoints

    [comment] = fake.comments_on()
    assert (comment.on, comment.text, comment.author) == (
        result.remote_id,
        "Recipe in bio",
        credentials.extra["ig_user_id"],
    )
    assert again.remote_id == result.remote_id and len(fake.posts()) == 1
    assert checkpoints.get("first_comment") == comment.id


def test_a_resumed_post_reads_its_comments_back_before_commenting(publisher, fake, media_host):
    credentials = account(fake)
    post = photo_post(media_host)
    post = OutboundPost(post.text, media=post.media, first_comment="Recipe in bio")
    earlier = MemoryCheckpoints()
    publisher.publish_resumable(post, credentials, "k1", earlier)
    # The earlier attempt commented, then died before its comment's checkpoint was stored.
    lost = MemoryCheckpoints({k: v for k, v in earlier.values.items() if k != "first_comment"})

    publisher.publish_resumable(post, credentials, "k1", lost)

    [comment] = fake.comments_on()
    assert lost.get("first_comment") == comment.id
    assert [e.path.endswith("/comments") for e in fake.journal.entries("POST")].count(True) == 1


def test_a_comment_failing_with_5xx_leaves_the_media_published_with_a_note(publisher, fake, media_host):
    credentials = account(fake)
    fake.controls.add_fault("status", method="POST", path_suffix="/comments", times=5, status=503)
    post = photo_post(media_host)

    result = publisher.publish(
        OutboundPost(post.text, media=post.media, first_comment="Recipe in bio"), credentials, "k1"
    )

    [published] = fake.posts()
    assert result.remote_id == published.id and fake.comments_on() == []
    assert result.note is not None and "did not confirm its first comment" in result.note
    assert len(fake.journal.entries("POST", path_prefix=f"/v24.0/{published.id}/comments")) == 1  # never blindly resent
