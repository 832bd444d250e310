"""LinkedInPublisher against FakeLinkedIn over real HTTP: connect with organizations, refresh, publish, duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from publishers.base import Credentials, Media, MemoryCheckpoints, OutboundPost
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    ConnectFailed,
    DuplicatePost,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from publishers.linkedin import LinkedInPublisher, little_text
from publishers.oauth import new_state
from tests.fakes.linkedin import CLIENT_ID, CLIENT_SECRET, FakeLinkedIn

REDIRECT = "http://localhost/channels/linkedin/callback"
POSTS = "/rest/posts"


@pytest.fixture
def fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn(authorizing_member="bluebell", refresh_tokens=True) as server:
        yield server


def adapter_for(fake: FakeLinkedIn, **extra: str) -> LinkedInPublisher:
    return LinkedInPublisher(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_url": fake.base_url,
            "authorize_url": f"{fake.base_url}/oauth/v2/authorization",
            "token_url": f"{fake.base_url}/oauth/v2/accessToken",
            "version": "202601",
            "timeout_seconds": "5",
        }
        | extra
    )


@pytest.fixture
def publisher(fake: FakeLinkedIn) -> Iterator[LinkedInPublisher]:
    adapter = adapter_for(fake)
    yield adapter
    adapter.close()


def member_credentials(fake: FakeLinkedIn, handle: str) -> Credentials:
    sub, access = fake.add_member(handle)
    return Credentials(access, extra={"author": f"urn:li:person:{sub}", "name": handle})


def connect(publisher: LinkedInPublisher) -> Credentials:
    state = new_state()
    approved = httpx.get(publisher.authorization_url(REDIRECT, state, None))
    callback = parse_qs(urlsplit(approved.headers["location"]).query)
    assert callback["state"] == [state]
    return publisher.exchange_code(REDIRECT, callback["code"][0], None)


def test_connect_offers_the_member_and_the_organizations_they_administer(publisher, fake):
    fake.add_organization("Bluebell Bakery", ["bluebell"])
    fake.add_organization("Someone Else", ["other"])

    accounts = publisher.accounts(connect(publisher))

    assert [(a.kind, a.profile.display_name) for a in accounts] == [
        ("member", "bluebell"),
        ("organization", "Bluebell Bakery"),
    ]
    assert accounts[1].credentials.extra["author"].startswith("urn:li:organization:")


def test_a_wrong_code_is_refused(publisher):
    with pytest.raises(ConnectFailed, match="LinkedIn refused the sign-in"):
        publisher.exchange_code(REDIRECT, "forged", None)


def test_refresh_keeps_the_author_and_the_refresh_token(publisher, fake):
    credentials = publisher.accounts(connect(publisher))[0].credentials

    fresh = publisher.refresh(credentials)

    assert fresh.access_token != credentials.access_token and fresh.refresh_token == credentials.refresh_token
    assert fresh.extra["author"] == credentials.extra["author"]
    publisher.publish(OutboundPost("Renewed"), fresh, "k1")


def test_a_token_near_expiry_is_refreshed_first_when_a_refresh_token_exists(publisher, fake):
    credentials = publisher.accounts(connect(publisher))[0].credentials
    soon = Credentials(credentials.access_token, credentials.refresh_token, datetime.now(UTC), credentials.extra)

    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Not yet"), soon, "k1")

    assert fake.posts() == []


def test_publishes_text_escaped_and_an_image_as_the_organization(publisher, fake, tmp_path: Path):
    image = tmp_path / "loaf.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    fake.add_organization("Bluebell Bakery", ["bluebell"])
    organization = publisher.accounts(connect(publisher))[1].credentials

    result = publisher.publish(
        OutboundPost("Rye (new) #bread", media=(Media(str(image), "image/png", "A loaf"),)), organization, "k1"
    )

    [post] = fake.posts()
    assert result.remote_id == post.urn and result.url.endswith(f"/feed/update/{post.urn}")
    assert post.commentary == little_text("Rye (new) #bread") == r"Rye \(new\) \#bread"
    assert post.author == organization.extra["author"] and len(post.images) == 1
    assert all(e.headers["linkedin-version"] == "202601" for e in fake.journal.entries(path_prefix="/rest/"))


def test_commit_then_drop_then_the_duplicate_error_names_the_post_that_landed(publisher, fake):
    credentials = member_credentials(fake, "bluebell")
    fake.controls.add_fault("commit_then_drop", method="POST", path=POSTS)

    with pytest.raises(OutcomeUnknown):
        publisher.publish(OutboundPost("Lost in the post"), credentials, "k1")
    with pytest.raises(DuplicatePost) as caught:
        publisher.publish(OutboundPost("Lost in the post"), credentials, "k1")

    [post] = fake.posts()
    assert caught.value.existing_id == post.urn and caught.value.existing_url.endswith(post.urn)


def test_a_sunset_version_is_a_configuration_error_not_a_bad_post(fake):
    adapter = adapter_for(fake, version="202301")
    try:
        with pytest.raises(TransientError, match="LINKEDIN_VERSION"):
            adapter.publish(OutboundPost("Old"), member_credentials(fake, "bluebell"), "k1")
    finally:
        adapter.close()


def test_the_daily_limit_pauses_the_channel_until_utc_midnight(publisher, fake):
    credentials = member_credentials(fake, "bluebell")
    fake.daily.set_limit(0, fake.daily.limit.window)

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Too many"), credentials, "k1")

    assert caught.value.scope == "channel"
    assert (caught.value.reset_at.hour, caught.value.reset_at.minute) == (0, 0)


def test_revoked_and_expired_tokens(publisher, fake):
    credentials = member_credentials(fake, "bluebell")
    fake.tokens.expire(credentials.access_token)
    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Expired"), credentials, "k1")
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.refresh(credentials)  # no refresh token: a self-serve app must reconnect

    live = member_credentials(fake, "bluebell")
    fake.revoke_member("bluebell")
    with pytest.raises(AuthRevoked, match="Reconnect"):
        publisher.publish(OutboundPost("Revoked"), live, "k1")
    assert fake.posts() == []


# -- first comment ---------------------------------------------------------------------------------------------------

COMMENTS = "/comments"


def test_the_first_comment_goes_under_the_post_as_its_author(publisher, fake):
    fake.add_organization("Bluebell Bakery", ["bluebell"])
    organization = publisher.accounts(connect(publisher))[1].credentials
    checkpoints = MemoryCheckpoints()

    result = publisher.publish_resumable(
        OutboundPost("Rye today", first_comment="Order (ahead) #now"), organization, "k1", checkpoints
    )

    [comment] = fake.comments_on(result.remote_id)
    assert (comment.actor, comment.text) == (organization.extra["author"], "Order (ahead) #now")
    assert checkpoints.get("first_comment") == comment.id and result.note is None


def test_a_comment_whose_answer_is_lost_is_read_back_not_sent_again(publisher, fake):
    credentials = member_credentials(fake, "bluebell")
    fake.controls.add_fault("commit_then_drop", method="POST", path="/rest/socialActions/", path_suffix=COMMENTS)
    checkpoints = MemoryCheckpoints()

    result = publisher.publish_resumable(
        OutboundPost("Rye today", first_comment="Order ahead"), credentials, "k1", checkpoints
    )

    [post], [comment] = fake.posts(), fake.comments_on()
    assert result.remote_id == post.urn and checkpoints.get("first_comment") == comment.id
    assert result.note is None


def test_a_refused_comment_leaves_the_post_published_with_a_note(publisher, fake):
    credentials = member_credentials(fake, "bluebell")
    fake.controls.add_fault(
        "status",
        method="POST",
        path="/rest/socialActions/",
        status=400,
        body={"status": 400, "serviceErrorCode": 100, "message": "Comment text is invalid"},
    )

    result = publisher.publish(OutboundPost("Rye today", first_comment="Order ahead"), credentials, "k1")

    [post] = fake.posts()
    assert result.remote_id == post.urn and fake.comments_on() == []
    assert result.note == (
        "The post is live, but its first comment was not added "
        "(LinkedIn refused the comment: Comment text is invalid). Add it on LinkedIn by hand."
    )
