"""X, LinkedIn, Facebook Pages, Instagram and Threads through the real dispatcher and worker, against their fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from publishers.base import Credentials, Profile
from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth, NetworkPause
from saas.posts.models import AttemptOutcome, Post, TargetState
from tenants import system_session, tenant_session
from tests.factories import PASSWORD, app_context, make_workspace
from tests.fakes import graph
from tests.fakes.facebook import FakeFacebook
from tests.fakes.graph import MediaHost
from tests.fakes.instagram import FakeInstagram
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.threads import FakeThreads
from tests.fakes.x import FakeX
from tests.publishing.conftest import Pipeline

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def _configure(app: Flask, network: str, settings: dict[str, str]) -> Iterator[None]:
    key = f"{network.upper()}_SETTINGS"
    previous = app.config[key]
    app.config[key] = previous | settings
    app.extensions.pop("publishers", None)  # adapters are built from config once per app
    yield
    app.config[key] = previous
    app.extensions.pop("publishers", None)


@pytest.fixture
def x(app: Flask) -> Iterator[FakeX]:
    from tests.fakes.x import CLIENT_ID, CLIENT_SECRET

    with FakeX() as fake:
        settings = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "api_url": fake.base_url}
        yield from (fake for _ in _configure(app, "x", settings))


@pytest.fixture
def linkedin(app: Flask) -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        yield from (fake for _ in _configure(app, "linkedin", {"api_url": fake.base_url}))


def _meta(fake: graph.FakeGraph, **extra: str) -> dict[str, str]:
    return {"client_id": graph.CLIENT_ID, "client_secret": graph.CLIENT_SECRET, "graph_url": fake.base_url} | extra


@pytest.fixture
def facebook(app: Flask) -> Iterator[FakeFacebook]:
    with FakeFacebook() as fake:
        yield from (fake for _ in _configure(app, "facebook_pages", _meta(fake)))


@pytest.fixture
def instagram(app: Flask) -> Iterator[FakeInstagram]:
    with FakeInstagram() as fake:
        yield from (fake for _ in _configure(app, "instagram", _meta(fake, media_poll_seconds="0.02")))


@pytest.fixture
def threads(app: Flask) -> Iterator[FakeThreads]:
    with FakeThreads() as fake:
        yield from (fake for _ in _configure(app, "threads", _meta(fake, media_poll_seconds="0.02")))


@pytest.fixture
def media_host() -> Iterator[MediaHost]:
    with MediaHost() as host:
        yield host


@pytest.fixture
def pipeline(app, redis_conn) -> Pipeline:
    return Pipeline(app, redis_conn, network=None)  # type: ignore[arg-type]  # channels are connected below


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "loaf.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return str(path)


def connect(tenant, network: str, remote_id: str, handle: str, credentials: Credentials) -> Channel:
    with app_context(), tenant_session(tenant.id) as session:
        channel = channel_service.connect(session, network, Profile(remote_id, handle, handle.title()), credentials)
        session.commit()
        return channel


def stored(tenant, channel: Channel) -> Credentials:
    with app_context(), tenant_session(tenant.id) as session:
        return channel_service.load_credentials(session.get(Channel, channel.id))


def attach(tenant, post_id: int, source: str, mime_type: str) -> None:
    with app_context(), tenant_session(tenant.id) as session:
        session.execute(
            sa.update(Post).where(Post.id == post_id).values(media=[{"source": source, "mime_type": mime_type}])
        )
        session.commit()


def network_pause(network: str) -> datetime | None:
    """Until when every channel on `network` waits (an app-wide limit), if it does."""
    with app_context(), system_session() as session:
        pause = session.get(NetworkPause, network)
        return pause.until if pause else None


def schedule_with_media(tenant, owner, channel: Channel, text: str, source: str) -> int:
    """What the composer does for a post with an image: media validated with the text, then scheduled now."""
    from saas.posts import service as post_service

    with app_context(), tenant_session(tenant.id) as session:
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text=text,
            channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
            media=[{"source": source, "mime_type": "image/jpeg"}],
        )
        session.commit()
        return post.id


def retry_now(pipeline: Pipeline, tenant) -> None:
    pipeline.make_due_now(tenant)
    pipeline.run_once()


def connect_x(tenant, fake: FakeX, username: str, expires_in: timedelta = timedelta(hours=2)) -> Channel:
    user_id, access, refresh = fake.add_account(username)
    credentials = Credentials(
        access, refresh, datetime.now(UTC) + expires_in, {"user_id": user_id, "username": username}
    )
    return connect(tenant, "x", user_id, username, credentials)


def connect_linkedin(tenant, fake: FakeLinkedIn, handle: str) -> Channel:
    sub, access = fake.add_member(handle)
    author = f"urn:li:person:{sub}"
    credentials = Credentials(access, None, datetime.now(UTC) + timedelta(days=60), {"author": author})
    return connect(tenant, "linkedin", author, handle, credentials)


def connect_facebook(tenant, fake: FakeFacebook, name: str) -> Channel:
    page_id = fake.add_page(name, "owner")
    return connect(
        tenant, "facebook_pages", page_id, name, Credentials(fake.pages[page_id]["token"], extra={"page_id": page_id})
    )


def connect_instagram(tenant, fake: FakeInstagram, username: str) -> Channel:
    ig_id = fake.add_account(username, "owner")
    expires = datetime.now(UTC) + timedelta(days=59)
    credentials = Credentials(fake.user_token("owner"), None, expires, {"ig_user_id": ig_id})
    return connect(tenant, "instagram", ig_id, username, credentials)


def connect_threads(tenant, fake: FakeThreads, username: str) -> Channel:
    user_id, token = fake.add_account(username)
    credentials = Credentials(token, None, datetime.now(UTC) + timedelta(days=59), {"user_id": user_id})
    return connect(tenant, "threads", user_id, username, credentials)


def assert_blocked_and_told(pipeline, tenant, owner, outbox, handle: str) -> None:
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.BLOCKED
    assert target.channel.health is ChannelHealth.NEEDS_RECONNECT
    assert [m["Subject"] for m in outbox.to(owner.email)] == [f"Reconnect @{handle} to keep publishing"]


# -- Networks that take our uploads (X, LinkedIn, Facebook) ----------------------------------------------------------

# How to connect a channel on each fake, and how many attachments each post that reached it carries.
UPLOADING = {
    "x": (connect_x, lambda fake: [len(p.media_ids) for p in fake.posts()]),
    "linkedin": (connect_linkedin, lambda fake: [len(p.images) for p in fake.posts()]),
    "facebook": (connect_facebook, lambda fake: [len(p.photos) for p in fake.posts()]),
}


@pytest.mark.parametrize("network", sorted(UPLOADING))
def test_text_and_an_uploaded_image_are_published(request, pipeline, image, network):
    fake = request.getfixturevalue(network)
    connect_to, attachments = UPLOADING[network]
    tenant, owner = make_workspace()
    channel = connect_to(tenant, fake, "Bluebell")
    pipeline.schedule(tenant, owner, [channel], "Open at 7")
    attach(tenant, pipeline.schedule(tenant, owner, [channel], "Rye today"), image, "image/png")

    pipeline.run_once()

    assert [t.state for t in pipeline.targets(tenant)] == [TargetState.PUBLISHED] * 2
    assert sorted(attachments(fake)) == [0, 1]


# -- X ---------------------------------------------------------------------------------------------------------------


def test_x_token_expiring_is_refreshed_once_and_the_rotated_tokens_saved(pipeline, x):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "stale", expires_in=timedelta(seconds=30))
    old = stored(tenant, channel)
    pipeline.schedule(tenant, owner, [channel], "Still here")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    new = stored(tenant, channel)
    assert target.state is TargetState.PUBLISHED
    assert new.refresh_token != old.refresh_token and new.expires_at > old.expires_at
    assert len(x.journal.entries("POST", "/2/oauth2/token")) == 1


def test_x_two_posts_needing_a_refresh_at_once_refresh_once(pipeline, x):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "twice", expires_in=timedelta(seconds=30))
    pipeline.schedule(tenant, owner, [channel], "Morning")
    pipeline.schedule(tenant, owner, [channel], "Evening")

    pipeline.run_once()

    # The refresh token rotates: a second refresh with the spent one would be refused and look revoked.
    assert [t.state for t in pipeline.targets(tenant)] == [TargetState.PUBLISHED] * 2
    assert len(x.journal.entries("POST", "/2/oauth2/token")) == 1


def test_x_commit_then_drop_is_confirmed_by_read_back_and_posted_once(pipeline, x):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "dropped")
    x.controls.add_fault("commit_then_drop", method="POST", path="/2/tweets")
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    [tweet] = x.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == tweet.id
    assert "nothing was posted twice" in target.attempts[-1].message
    assert len(x.journal.entries("POST", "/2/tweets")) == 1


def test_x_unknown_outcome_that_read_back_cannot_find_is_unconfirmed_not_reposted(pipeline, x, outbox):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "unsure")
    x.controls.add_fault("status", method="POST", path="/2/tweets", status=503, body={"title": "Service Unavailable"})
    pipeline.schedule(tenant, owner, [channel], "Did it go?")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.UNCONFIRMED and x.posts() == []
    assert len(x.journal.entries("POST", "/2/tweets")) == 1


def test_x_user_rate_limit_pauses_only_that_channel(pipeline, x):
    tenant, owner = make_workspace()
    busy, calm = connect_x(tenant, x, "busy"), connect_x(tenant, x, "calm")
    x.rates.set_limit(1, timedelta(minutes=15))
    pipeline.schedule(tenant, owner, [busy], "First")
    pipeline.run_once()
    pipeline.schedule(tenant, owner, [busy], "Second")
    pipeline.schedule(tenant, owner, [calm], "Calm one")

    pipeline.run_once()

    states = {(t.channel.handle, t.state) for t in pipeline.targets(tenant)}
    assert states == {("busy", TargetState.PUBLISHED), ("busy", TargetState.SCHEDULED), ("calm", TargetState.PUBLISHED)}
    paused = {t.channel.handle: t.channel.paused_until for t in pipeline.targets(tenant)}
    assert paused["busy"] is not None and paused["calm"] is None
    assert network_pause("x") is None


def test_x_revoked_token_blocks_the_channel_and_tells_the_author(pipeline, x, outbox):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "gone")
    x.revoke_account("gone")
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    assert_blocked_and_told(pipeline, tenant, owner, outbox, "gone")
    assert x.posts() == []


# -- LinkedIn --------------------------------------------------------------------------------------------------------


def test_linkedin_commit_then_drop_adopts_the_post_the_duplicate_error_names(pipeline, linkedin):
    tenant, owner = make_workspace()
    channel = connect_linkedin(tenant, linkedin, "dropped")
    linkedin.controls.add_fault("commit_then_drop", method="POST", path="/rest/posts")
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    [post] = linkedin.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == post.urn
    assert target.remote_url.endswith(f"/feed/update/{post.urn}")
    assert [e.status for e in linkedin.journal.entries("POST", "/rest/posts")] == [None, 422]


def test_linkedin_duplicate_of_an_older_post_is_not_adopted(pipeline, linkedin):
    tenant, owner = make_workspace()
    channel = connect_linkedin(tenant, linkedin, "repeats")
    pipeline.schedule(tenant, owner, [channel], "Open at 7")
    pipeline.run_once()
    [older] = linkedin.posts()
    with linkedin.clock.lock:  # the first post is weeks old by now
        linkedin.posts_by_urn[older.urn].created_at -= timedelta(days=20)
    linkedin.controls.add_fault("status", method="POST", path="/rest/posts", status=504, body={"status": 504})
    pipeline.schedule(tenant, owner, [channel], "Open at 7")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    first, second = pipeline.targets(tenant)
    assert first.remote_id == older.urn
    assert second.state is TargetState.FAILED and second.remote_id is None
    assert "already has a post with this exact text" in second.last_error


def test_linkedin_daily_limit_pauses_the_channel_until_midnight_utc(pipeline, linkedin):
    tenant, owner = make_workspace()
    channel = connect_linkedin(tenant, linkedin, "busy")
    linkedin.daily.set_limit(0, timedelta(hours=24))
    pipeline.schedule(tenant, owner, [channel], "Too many today")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED and target.attempts[0].outcome is AttemptOutcome.RATE_LIMITED
    assert (target.channel.paused_until.hour, target.channel.paused_until.minute) == (0, 0)


def test_linkedin_revoked_token_blocks_the_channel_and_tells_the_author(pipeline, linkedin, outbox):
    tenant, owner = make_workspace()
    channel = connect_linkedin(tenant, linkedin, "gone")
    linkedin.revoke_member("gone")
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    assert_blocked_and_told(pipeline, tenant, owner, outbox, "gone")


# -- Facebook Pages --------------------------------------------------------------------------------------------------


def test_facebook_commit_then_drop_is_confirmed_by_read_back(pipeline, facebook):
    tenant, owner = make_workspace()
    channel = connect_facebook(tenant, facebook, "Dropped")
    page_id = channel.remote_id
    facebook.controls.add_fault("commit_then_drop", method="POST", path=f"/v24.0/{page_id}/feed")
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    [post] = facebook.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == post.id
    assert len(facebook.journal.entries("POST", f"/v24.0/{page_id}/feed")) == 1


def test_facebook_app_throttle_pauses_every_facebook_channel_but_not_other_networks(pipeline, facebook, x):
    tenant, owner = make_workspace()
    page, other = connect_facebook(tenant, facebook, "Busy"), connect_x(tenant, x, "elsewhere")
    facebook.throttle(4, minutes=20)
    pipeline.schedule(tenant, owner, [page, other], "Slow down")

    pipeline.run_once()

    states = {t.channel.network: t.state for t in pipeline.targets(tenant)}
    assert states == {"facebook_pages": TargetState.SCHEDULED, "x": TargetState.PUBLISHED}
    pause = network_pause("facebook_pages")
    assert pause is not None and timedelta(minutes=19) < pause - datetime.now(UTC) <= timedelta(minutes=20)


def test_facebook_revoked_page_token_blocks_the_channel_and_tells_the_author(pipeline, facebook, outbox):
    tenant, owner = make_workspace()
    channel = connect_facebook(tenant, facebook, "Gone")
    facebook.tokens.revoke(channel.remote_id)
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    assert_blocked_and_told(pipeline, tenant, owner, outbox, "Gone")


# -- Instagram -------------------------------------------------------------------------------------------------------


def test_instagram_publishes_an_image_and_keeps_its_container(pipeline, instagram, media_host):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "bluebell.bakery")
    schedule_with_media(tenant, owner, channel, "Rye today", media_host.add("r.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    [post] = instagram.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == post.id
    assert target.checkpoints[f"{target.idempotency_key}:container:0"] == post.container


def test_instagram_publishes_a_library_image_it_downloads_from_our_signed_address(app, pipeline, instagram):
    from saas.media import service as media_service
    from saas.posts import service as post_service
    from tests.live_server import serving
    from tests.test_media_links import jpeg

    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "harbor.dental")
    with app_context(), tenant_session(tenant.id) as session:
        item = media_service.upload(session, filename="smile.jpg", data=jpeg(), alt="A smile", uploaded_by=owner.id)
        post_service.schedule_post(
            session,
            author_id=owner.id,
            text="Smile",
            channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
            extras=post_service.Extras(media_ids=(item.id,)),
        )
        session.commit()

    previous = app.config["PUBLIC_BASE_URL"]
    with serving(app) as base:  # Instagram downloads the image from us, as Meta does
        app.config["PUBLIC_BASE_URL"] = base
        try:
            pipeline.run_once()
        finally:
            app.config["PUBLIC_BASE_URL"] = previous

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED, target.last_error
    [created] = [e for e in instagram.journal.entries("POST") if e.path.endswith("/media")]
    assert created.body["image_url"].startswith(f"{base}/m/")
    assert len(instagram.posts()) == 1


def test_instagram_commit_then_drop_reads_the_stored_container_and_posts_once(pipeline, instagram, media_host):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "dropped")
    publish = f"/v24.0/{channel.remote_id}/media_publish"
    instagram.controls.add_fault("commit_then_drop", method="POST", path=publish)
    schedule_with_media(tenant, owner, channel, "Lost", media_host.add("l.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED and target.outcome_unknown_since is not None
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    [post] = instagram.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == post.id
    assert len(instagram.journal.entries("POST", publish)) == 1 and len(instagram.containers) == 1


def test_instagram_container_failing_processing_fails_the_target_with_the_reason(
    pipeline, instagram, media_host, outbox
):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "broken")
    instagram.fail_next = "2207005: The image format is not supported."
    schedule_with_media(tenant, owner, channel, "Odd file", media_host.add("o.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.FAILED
    assert "The image format is not supported" in target.last_error
    assert instagram.posts() == []


def test_instagram_spent_quota_waits_for_the_window_and_says_so(pipeline, instagram, media_host):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "prolific")
    instagram.quota_total = 0
    schedule_with_media(tenant, owner, channel, "One more", media_host.add("m.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED and target.due_at > datetime.now(UTC)
    assert "allows 0 posts per 24 hours" in target.last_error and instagram.containers == {}


def test_instagram_post_without_media_is_refused_when_scheduling(app, instagram):
    from saas.posts import service as post_service

    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "needs.pictures")
    with app_context(), tenant_session(tenant.id) as session:
        schedule = post_service.Schedule(publish_now=True, local_time=None, timezone="UTC")
        with pytest.raises(post_service.ComposeError, match="Instagram needs at least one image or video"):
            post_service.schedule_post(
                session, author_id=owner.id, text="Words only", channel_ids=[channel.id], schedule=schedule
            )


def test_instagram_revoked_token_blocks_the_channel_and_tells_the_author(pipeline, instagram, media_host, outbox):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "gone")
    instagram.tokens.revoke(instagram.person("owner"))
    schedule_with_media(tenant, owner, channel, "Anyone?", media_host.add("g.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()

    assert_blocked_and_told(pipeline, tenant, owner, outbox, "gone")


# -- Threads ---------------------------------------------------------------------------------------------------------


def test_threads_publishes_text_and_an_image(pipeline, threads, media_host):
    tenant, owner = make_workspace()
    channel = connect_threads(tenant, threads, "bluebell")
    pipeline.schedule(tenant, owner, [channel], "Open at 7")
    schedule_with_media(tenant, owner, channel, "Rye", media_host.add("t.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()

    assert [t.state for t in pipeline.targets(tenant)] == [TargetState.PUBLISHED] * 2
    kinds = sorted(threads.containers[p.container].fields["media_type"] for p in threads.posts())
    assert kinds == ["IMAGE", "TEXT"]


def test_threads_commit_then_drop_posts_once(pipeline, threads):
    tenant, owner = make_workspace()
    channel = connect_threads(tenant, threads, "dropped")
    publish = f"/v1.0/{channel.remote_id}/threads_publish"
    threads.controls.add_fault("commit_then_drop", method="POST", path=publish)
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    [post] = threads.posts()
    assert target.state is TargetState.PUBLISHED and target.remote_id == post.id
    assert len(threads.journal.entries("POST", publish)) == 1


def test_threads_token_near_expiry_is_renewed_and_saved(pipeline, threads):
    tenant, owner = make_workspace()
    user_id, token = threads.add_account("renewing")
    soon = Credentials(token, None, datetime.now(UTC) + timedelta(days=2), {"user_id": user_id})
    channel = connect(tenant, "threads", user_id, "renewing", soon)
    pipeline.schedule(tenant, owner, [channel], "Fresh")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert stored(tenant, channel).expires_at > datetime.now(UTC) + timedelta(days=59)


def test_threads_account_throttle_pauses_only_that_channel(pipeline, threads):
    tenant, owner = make_workspace()
    channel = connect_threads(tenant, threads, "busy")
    threads.throttle(17, minutes=9)
    pipeline.schedule(tenant, owner, [channel], "Slow")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert timedelta(minutes=8) < target.channel.paused_until - datetime.now(UTC) <= timedelta(minutes=9)
    assert network_pause("threads") is None


def test_threads_revoked_token_blocks_the_channel_and_tells_the_author(pipeline, threads, outbox):
    tenant, owner = make_workspace()
    channel = connect_threads(tenant, threads, "gone")
    threads.tokens.revoke(channel.remote_id)
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    assert_blocked_and_told(pipeline, tenant, owner, outbox, "gone")


# -- First comment (Facebook Pages, Instagram, LinkedIn) ---------------------------------------------------------------


def schedule_with_comment(tenant, owner, channel: Channel, text: str, comment: str, media: str | None = None) -> int:
    """What the composer does for a post with a first comment (and, for Instagram, an image)."""
    from saas.posts import service as post_service

    with app_context(), tenant_session(tenant.id) as session:
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text=text,
            channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
            extras=post_service.Extras(first_comment=comment),
            media=[{"source": media, "mime_type": "image/jpeg"}] if media else None,
        )
        session.commit()
        return post.id


# How to connect each, how many posts reached the fake, and the text of every comment on it.
COMMENTING = {
    "facebook": (connect_facebook, lambda fake: len(fake.posts()), lambda fake: [c.text for c in fake.comments_on()]),
    "instagram": (connect_instagram, lambda fake: len(fake.posts()), lambda fake: [c.text for c in fake.comments_on()]),
    "linkedin": (connect_linkedin, lambda fake: len(fake.posts()), lambda fake: [c.text for c in fake.comments_on()]),
}
# 5xx bodies as each network sends them.
SERVER_ERRORS = {
    "facebook": {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}},
    "instagram": {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1}},
    "linkedin": {"status": 500, "message": "Internal Server Error"},
}


def publish_with_comment(request, pipeline, network: str, comment: str = "Order ahead: bluebell.example/order"):
    fake = request.getfixturevalue(network)
    connect_to, _, _ = COMMENTING[network]
    tenant, owner = make_workspace()
    channel = connect_to(tenant, fake, "bluebell.bakery")
    media = request.getfixturevalue("media_host").add("r.jpg", JPEG, "image/jpeg") if network == "instagram" else None
    return (
        fake,
        tenant,
        owner,
        channel,
        lambda: schedule_with_comment(tenant, owner, channel, "Rye today", comment, media),
    )


@pytest.mark.parametrize("network", sorted(COMMENTING))
def test_the_first_comment_is_published_once_under_the_post(request, pipeline, network):
    fake, tenant, _, _, schedule = publish_with_comment(request, pipeline, network)
    _, posts, comments = COMMENTING[network]
    schedule()

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and target.last_error is None
    assert posts(fake) == 1 and comments(fake) == ["Order ahead: bluebell.example/order"]


@pytest.mark.parametrize("network", sorted(COMMENTING))
def test_a_comment_whose_answer_is_lost_is_found_and_never_posted_twice(request, pipeline, network):
    fake, tenant, _, _, schedule = publish_with_comment(request, pipeline, network)
    _, posts, comments = COMMENTING[network]
    fake.controls.add_fault("commit_then_drop", method="POST", path_suffix="/comments")
    schedule()

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and target.last_error is None
    assert posts(fake) == 1 and comments(fake) == ["Order ahead: bluebell.example/order"]
    assert target.checkpoints[f"{target.idempotency_key}:first_comment"]


@pytest.mark.parametrize("network", sorted(COMMENTING))
def test_a_failing_comment_leaves_the_post_published_with_a_note(request, pipeline, network):
    fake, tenant, _, _, schedule = publish_with_comment(request, pipeline, network)
    _, posts, comments = COMMENTING[network]
    fake.controls.add_fault(
        "status", method="POST", path_suffix="/comments", times=5, status=500, body=SERVER_ERRORS[network]
    )
    schedule()

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and posts(fake) == 1 and comments(fake) == []
    assert "The post is live, but" in target.last_error and "first comment" in target.last_error
    assert [a.outcome for a in target.attempts] == [AttemptOutcome.PUBLISHED]
    assert target.attempts[0].message == f"Published. {target.last_error}"


@pytest.mark.parametrize("network", ["facebook", "linkedin"])
def test_a_refused_comment_is_shown_on_the_post_and_the_post_is_not_sent_again(request, pipeline, client, network):
    fake, tenant, owner, _, schedule = publish_with_comment(request, pipeline, network)
    _, posts, comments = COMMENTING[network]
    body = (
        {"error": {"message": "(#200) Permissions error", "type": "OAuthException", "code": 200}}
        if network == "facebook"
        else {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions"}
    )
    fake.controls.add_fault("status", method="POST", path_suffix="/comments", status=403, body=body)
    post_id = schedule()
    client.log_in(owner.email, PASSWORD)

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and posts(fake) == 1 and comments(fake) == []
    assert "its first comment was not added" in target.last_error and "by hand" in target.last_error
    assert target.channel.health is ChannelHealth.OK  # the post went out: no reconnect banner for a comment
    page = client.get(f"/w/{tenant.slug}/posts/{post_id}").get_data(as_text=True)
    assert "its first comment was not added" in page


def test_facebook_post_adopted_after_an_unknown_outcome_says_its_comment_was_not_sent(pipeline, facebook):
    tenant, owner = make_workspace()
    channel = connect_facebook(tenant, facebook, "Dropped")
    facebook.controls.add_fault("commit_then_drop", method="POST", path=f"/v24.0/{channel.remote_id}/feed")
    schedule_with_comment(tenant, owner, channel, "Lost in the post", "Order ahead")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and len(facebook.posts()) == 1
    assert facebook.comments_on() == []
    assert "not sent again" in target.last_error and "add the comment by hand" in target.last_error


def test_instagram_retry_after_the_post_went_live_comments_once(pipeline, instagram, media_host):
    tenant, owner = make_workspace()
    channel = connect_instagram(tenant, instagram, "dropped")
    instagram.controls.add_fault("commit_then_drop", method="POST", path=f"/v24.0/{channel.remote_id}/media_publish")
    schedule_with_comment(tenant, owner, channel, "Lost", "Recipe in bio", media_host.add("l.jpg", JPEG, "image/jpeg"))

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and target.last_error is None
    assert len(instagram.posts()) == 1 and [c.text for c in instagram.comments_on()] == ["Recipe in bio"]


def test_linkedin_post_adopted_from_the_duplicate_error_says_its_comment_was_not_sent(pipeline, linkedin):
    tenant, owner = make_workspace()
    channel = connect_linkedin(tenant, linkedin, "dropped")
    linkedin.controls.add_fault("commit_then_drop", method="POST", path="/rest/posts")
    schedule_with_comment(tenant, owner, channel, "Lost in the post", "Order ahead")

    pipeline.run_once()
    retry_now(pipeline, tenant)

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and len(linkedin.posts()) == 1
    assert linkedin.comments_on() == []
    assert "not sent again" in target.last_error


def test_a_network_without_first_comments_publishes_the_post_alone(pipeline, x):
    tenant, owner = make_workspace()
    channel = connect_x(tenant, x, "bluebell")
    schedule_with_comment(tenant, owner, channel, "Rye today", "Order ahead")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED and target.last_error is None
    assert [p.text for p in x.posts()] == ["Rye today"]  # no reply invented in its place
