"""FacebookPagesPublisher against FakeFacebook over real HTTP: Page picking, publish, read-back, Meta throttling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, MemoryCheckpoints, OutboundPost
from publishers.errors import AuthRevoked, ConnectFailed, InvalidPost, OutcomeUnknown, RateLimited
from publishers.facebook import FacebookPagesPublisher
from publishers.oauth import new_state
from tests.fakes.facebook import FakeFacebook
from tests.fakes.graph import CLIENT_ID, CLIENT_SECRET

REDIRECT = "http://localhost/channels/facebook_pages/callback"


@pytest.fixture
def fake() -> Iterator[FakeFacebook]:
    with FakeFacebook(authorizing_user="bluebell") as server:
        yield server


@pytest.fixture
def publisher(fake: FakeFacebook) -> Iterator[FacebookPagesPublisher]:
    adapter = FacebookPagesPublisher(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "graph_url": fake.base_url,
            "dialog_url": fake.base_url,
            "version": "v24.0",
            "timeout_seconds": "5",
        }
    )
    yield adapter
    adapter.close()


def page_credentials(fake: FakeFacebook, name: str = "Bluebell Bakery") -> Credentials:
    page_id = fake.add_page(name, "bluebell")
    return Credentials(fake.pages[page_id]["token"], extra={"page_id": page_id, "name": name})


def test_connect_lists_the_pages_the_person_manages_with_their_own_tokens(publisher, fake):
    fake.add_page("Bluebell Bakery", "bluebell")
    fake.add_page("Bluebell Café", "bluebell")
    fake.add_page("Not Mine", "someone")
    state = new_state()
    approved = httpx.get(publisher.authorization_url(REDIRECT, state, None))
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert callback["state"] == [state] and "/v24.0/dialog/oauth" in approved.request.url.path

    user = publisher.exchange_code(REDIRECT, callback["code"][0], None)
    pages = publisher.accounts(user)

    assert user.expires_at > datetime.now(UTC) + timedelta(days=59)  # traded for a long-lived token
    assert sorted(p.profile.display_name for p in pages) == ["Bluebell Bakery", "Bluebell Café"]
    assert all(p.credentials.access_token != user.access_token and p.kind == "Page" for p in pages)


def test_a_wrong_code_is_refused(publisher):
    with pytest.raises(ConnectFailed, match="Facebook refused the sign-in"):
        publisher.exchange_code(REDIRECT, "forged", None)


def test_publishes_text_and_a_photo(publisher, fake, tmp_path: Path):
    image = tmp_path / "loaf.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    credentials = page_credentials(fake)

    text = publisher.publish(OutboundPost("Open at 7"), credentials, "k1")
    photo = publisher.publish(OutboundPost("Rye today", media=(Media(str(image), "image/png"),)), credentials, "k2")

    first, second = fake.posts()
    assert (text.remote_id, photo.remote_id) == (first.id, second.id)
    assert first.photos == [] and len(second.photos) == 1
    assert text.url == f"https://www.facebook.com/{credentials.extra['page_id']}/posts/{first.id.split('_')[1]}"


def test_commit_then_drop_is_unknown_and_read_back_finds_the_one_post(publisher, fake):
    credentials = page_credentials(fake)
    since = datetime.now(UTC) - timedelta(minutes=2)
    fake.controls.add_fault("commit_then_drop", method="POST", path=f"/v24.0/{credentials.extra['page_id']}/feed")

    with pytest.raises(OutcomeUnknown):
        publisher.publish(OutboundPost("Lost in the post"), credentials, "k1")
    found = publisher.find_published(OutboundPost("Lost in the post"), credentials, "k1", since)

    [post] = fake.posts()
    assert found is not None and found.remote_id == post.id
    assert publisher.find_published(OutboundPost("Other"), credentials, "k1", since) is None


@pytest.mark.parametrize(("code", "scope"), [(32, "channel"), (80001, "channel"), (4, "app")])
def test_throttling_codes_inside_400_pause_what_they_name(publisher, fake, code, scope):
    credentials = page_credentials(fake)
    fake.throttle(code, minutes=7)

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Slow"), credentials, "k1")

    assert caught.value.scope == scope and caught.value.http_status == 400
    wait = caught.value.reset_at - datetime.now(UTC)
    assert timedelta(minutes=6) < wait <= timedelta(minutes=7)  # estimated_time_to_regain_access
    assert fake.posts() == []


def test_a_duplicate_of_the_previous_post_is_refused_for_good(publisher, fake):
    credentials = page_credentials(fake)
    publisher.publish(OutboundPost("Same"), credentials, "k1")

    with pytest.raises(InvalidPost, match="duplicate"):
        publisher.publish(OutboundPost("Same"), credentials, "k2")


def test_a_revoked_page_token_needs_a_reconnect(publisher, fake):
    credentials = page_credentials(fake)
    fake.tokens.revoke(credentials.extra["page_id"])

    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.publish(OutboundPost("Anyone?"), credentials, "k1")
    with pytest.raises(AuthRevoked):
        publisher.refresh(credentials)  # Page tokens do not expire and cannot be refreshed


def test_delete_removes_the_post(publisher, fake):
    credentials = page_credentials(fake)
    result = publisher.publish(OutboundPost("Short-lived"), credentials, "k1")

    publisher.delete(result.remote_id, credentials)

    assert fake.posts() == []


# -- first comment ---------------------------------------------------------------------------------------------------


def test_the_first_comment_goes_under_the_post_as_the_page(publisher, fake):
    credentials = page_credentials(fake)
    checkpoints = MemoryCheckpoints()
    post = OutboundPost("Open at 7", first_comment="Order ahead: bluebell.example")

    result = publisher.publish_resumable(post, credentials, "k1", checkpoints)

    [comment] = fake.comments_on(result.remote_id)
    assert (comment.text, comment.author) == ("Order ahead: bluebell.example", credentials.extra["page_id"])
    assert checkpoints.get("first_comment") == comment.id and result.note is None


def test_a_comment_whose_answer_is_lost_is_read_back_not_sent_again(publisher, fake):
    credentials = page_credentials(fake)
    post = OutboundPost("Open at 7", first_comment="Order ahead")
    checkpoints = MemoryCheckpoints()
    fake.controls.add_fault("commit_then_drop", method="POST", path=f"/v24.0/{credentials.extra['page_id']}_")

    result = publisher.publish_resumable(post, credentials, "k1", checkpoints)

    [comment] = fake.comments_on(result.remote_id)
    assert checkpoints.get("first_comment") == comment.id and result.note is None
    assert len(fake.posts()) == 1


def test_a_throttled_comment_is_noted_without_a_wait_that_no_one_keeps(publisher, fake):
    credentials = page_credentials(fake)
    fake.controls.add_fault(
        "status",
        method="POST",
        path_suffix="/comments",
        status=400,
        body={"error": {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}},
    )

    result = publisher.publish(OutboundPost("Open at 7", first_comment="Order ahead"), credentials, "k1")

    assert len(fake.posts()) == 1 and fake.comments_on() == []
    assert result.note == (
        "The post is live, but its first comment was not added (the network is limiting this account right now). "
        "Add it on Facebook by hand."
    )


def test_a_refused_comment_leaves_the_post_published_with_a_note(publisher, fake):
    credentials = page_credentials(fake)
    page_id = credentials.extra["page_id"]
    fake.controls.add_fault(
        "status",
        method="POST",
        path=f"/v24.0/{page_id}_",
        status=400,
        body={"error": {"message": "(#200) Permissions error", "type": "OAuthException", "code": 200}},
    )

    result = publisher.publish(OutboundPost("Open at 7", first_comment="Order ahead"), credentials, "k1")

    [post] = fake.posts()
    assert result.remote_id == post.id and fake.comments_on() == []
    assert (
        result.note is not None and "first comment was not added" in result.note and "Permissions error" in result.note
    )
