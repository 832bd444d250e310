"""Mastodon and Bluesky through the real dispatcher and worker, against their fakes over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from publishers.base import Credentials, Profile
from publishers.bluesky import BlueskyPublisher, record_key
from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth
from saas.posts.models import AttemptOutcome, Post, TargetState
from tenants import tenant_session
from tests.factories import app_context, make_workspace
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.publishing.conftest import Pipeline

STATUSES = "/api/v1/statuses"
CREATE_RECORD = "/xrpc/com.atproto.repo.createRecord"


@pytest.fixture
def mastodon(app: Flask) -> Iterator[FakeMastodon]:
    previous = app.config["MASTODON_SETTINGS"]
    app.config["MASTODON_SETTINGS"] = previous | {"allow_http": "1", "media_poll_seconds": "0.01"}
    app.extensions.pop("publishers", None)  # adapters are built from config once per app
    with FakeMastodon() as fake:
        yield fake
    app.config["MASTODON_SETTINGS"] = previous
    app.extensions.pop("publishers", None)


@pytest.fixture
def bluesky(app: Flask) -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        previous = app.config["BLUESKY_SETTINGS"]
        app.config["BLUESKY_SETTINGS"] = previous | {"pds_url": fake.base_url, "app_url": fake.base_url}
        app.extensions.pop("publishers", None)
        yield fake
        app.config["BLUESKY_SETTINGS"] = previous
        app.extensions.pop("publishers", None)


@pytest.fixture
def pipeline(app, redis_conn) -> Pipeline:
    return Pipeline(app, redis_conn, network=None)  # type: ignore[arg-type]  # channels are connected below


def _connect(tenant, network: str, profile: Profile, credentials: Credentials, limits=None) -> Channel:
    with app_context(), tenant_session(tenant.id) as session:
        channel = channel_service.connect(session, network, profile, credentials)
        channel.limits = limits
        session.commit()
        return channel


def connect_mastodon(tenant, fake: FakeMastodon, username: str) -> Channel:
    account_id, token = fake.add_account(username)
    credentials = Credentials(token, extra={"instance_url": fake.base_url, "account_id": account_id})
    profile = Profile(f"{account_id}@{fake.host_name}", f"{username}@{fake.host_name}", username.title())
    return _connect(tenant, "mastodon", profile, credentials, {"max_characters": 500, "max_media_attachments": 4})


def connect_bluesky(tenant, fake: FakeBluesky, handle: str) -> Channel:
    """Connected the way the connect page does it: one createSession, tokens kept."""
    _did, password = fake.add_account(handle)
    adapter = BlueskyPublisher({})
    try:
        profile, credentials = adapter.create_session(fake.base_url, handle, password)
    finally:
        adapter.close()
    return _connect(tenant, "bluesky", profile, credentials)


def stored_credentials(tenant, channel: Channel) -> Credentials:
    with app_context(), tenant_session(tenant.id) as session:
        return channel_service.load_credentials(session.get(Channel, channel.id))


def add_to_post(tenant, post_id: int, **values) -> None:
    """What the composer will set: media with alt text, thread parts."""
    with app_context(), tenant_session(tenant.id) as session:
        session.execute(sa.update(Post).where(Post.id == post_id).values(**values))
        session.commit()


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "loaf.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return str(path)


# -- Mastodon --------------------------------------------------------------------------------------------------------


def test_mastodon_thread_with_an_image_is_published_once(pipeline, mastodon, image):
    tenant, owner = make_workspace()
    channel = connect_mastodon(tenant, mastodon, "bluebell")
    post_id = pipeline.schedule(tenant, owner, [channel], "1/3 Baking week")
    add_to_post(
        tenant,
        post_id,
        media=[{"source": image, "mime_type": "image/png", "alt": "A loaf on the counter"}],
        thread=[{"text": "2/3 Rye on Monday"}, {"text": "3/3 Stollen on Friday"}],
    )

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    first, second, third = mastodon.statuses("bluebell")
    assert target.remote_id == first.id and target.remote_url.endswith(f"/@bluebell/{first.id}")
    assert (second.in_reply_to_id, third.in_reply_to_id) == (first.id, second.id)
    assert mastodon.media(first.media_ids[0]).description == "A loaf on the counter"
    requests = [(e.method, e.path, e.headers.get("idempotency-key")) for e in mastodon.journal.entries()]
    key = target.idempotency_key
    assert requests == [
        ("POST", "/api/v2/media", None),
        ("POST", STATUSES, f"{key}:0"),
        ("POST", STATUSES, f"{key}:1"),
        ("POST", STATUSES, f"{key}:2"),
    ]


def test_mastodon_commit_then_drop_posts_once_and_ends_published(pipeline, mastodon):
    tenant, owner = make_workspace()
    channel = connect_mastodon(tenant, mastodon, "dropped")
    mastodon.controls.add_fault("commit_then_drop", method="POST", path=STATUSES)
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED and target.outcome_unknown_since is not None
    pipeline.make_due_now(tenant)
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    [status] = mastodon.statuses()
    assert target.remote_id == status.id
    assert [e.outcome for e in mastodon.journal.entries("POST", STATUSES)] == ["committed", "replayed"]


def test_mastodon_revoked_token_blocks_the_channel_and_tells_the_author(pipeline, mastodon, outbox):
    tenant, owner = make_workspace()
    channel = connect_mastodon(tenant, mastodon, "gone")
    mastodon.revoke_account("gone")
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.BLOCKED
    assert target.channel.health is ChannelHealth.NEEDS_RECONNECT
    assert [m["Subject"] for m in outbox.to(owner.email)] == [
        f"Reconnect @gone@{mastodon.host_name} to keep publishing"
    ]
    assert mastodon.statuses() == []


def test_mastodon_rate_limit_pauses_the_channel_until_the_iso_reset(pipeline, mastodon):
    tenant, owner = make_workspace()
    channel = connect_mastodon(tenant, mastodon, "busy")
    mastodon.rates.set_limit(0, mastodon.rates.limit.window)
    pipeline.schedule(tenant, owner, [channel], "Slow down")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert target.attempts[0].outcome is AttemptOutcome.RATE_LIMITED
    [limited] = mastodon.journal.entries("POST", STATUSES)
    reset = limited.response_headers["X-RateLimit-Reset"]
    assert target.channel.paused_until.isoformat(timespec="milliseconds").replace("+00:00", "Z") == reset


# -- Bluesky ---------------------------------------------------------------------------------------------------------


def test_bluesky_post_with_an_image_is_published_at_its_record_key(pipeline, bluesky, image):
    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "bluebell.bsky.test")
    post_id = pipeline.schedule(tenant, owner, [channel], "Fresh bread #bakery")
    add_to_post(tenant, post_id, media=[{"source": image, "mime_type": "image/png", "alt": "A loaf"}], language="en")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    [record] = bluesky.records()
    assert record.rkey == record_key(target.idempotency_key, 0)
    assert target.remote_id == record.uri
    assert target.remote_url == f"{bluesky.base_url}/profile/bluebell.bsky.test/post/{record.rkey}"
    assert record.value["embed"]["images"][0]["alt"] == "A loaf" and record.value["langs"] == ["en"]
    paths = [e.path.removeprefix("/xrpc/com.atproto.") for e in bluesky.journal.entries()]
    assert paths == ["server.createSession", "repo.getRecord", "repo.uploadBlob", "repo.createRecord"]


def test_bluesky_commit_then_drop_leaves_one_record_and_ends_published(pipeline, bluesky):
    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "dropped.bsky.test")
    bluesky.controls.add_fault("commit_then_drop", method="POST", path=CREATE_RECORD)
    pipeline.schedule(tenant, owner, [channel], "Lost in the post")

    pipeline.run_once()
    pipeline.make_due_now(tenant)
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    [record] = bluesky.records()
    assert target.remote_id == record.uri
    assert len(bluesky.journal.entries("POST", CREATE_RECORD)) == 1
    assert "nothing was posted twice" in target.attempts[-1].message


def test_bluesky_unknown_outcome_with_nothing_created_is_published_on_the_next_try(pipeline, bluesky):
    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "flaky.bsky.test")
    # The server failed after receiving the write: it may or may not have acted (here it had not).
    bluesky.controls.add_fault("status", method="POST", path=CREATE_RECORD, status=502, body={"error": "BadGateway"})
    pipeline.schedule(tenant, owner, [channel], "Second time lucky")

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.outcome_unknown_since is not None and target.state is TargetState.SCHEDULED
    pipeline.make_due_now(tenant)
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED  # not `unconfirmed`: the record key makes a second post impossible
    [record] = bluesky.records()
    assert target.remote_id == record.uri
    assert len(bluesky.journal.entries("POST", CREATE_RECORD)) == 2


def test_bluesky_token_expiring_mid_run_is_refreshed_once_and_saved(pipeline, bluesky):
    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "stale.bsky.test")
    old = stored_credentials(tenant, channel)
    bluesky.expire_token(old.access_token)
    pipeline.schedule(tenant, owner, [channel], "Still here")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    new = stored_credentials(tenant, channel)
    assert (new.access_token, new.refresh_token) != (old.access_token, old.refresh_token)
    assert new.extra == old.extra and new.expires_at >= old.expires_at  # JWT `exp` has whole seconds
    paths = [e.path.removeprefix("/xrpc/com.atproto.") for e in bluesky.journal.entries()]
    assert paths.count("server.refreshSession") == 1 and paths.count("server.createSession") == 1  # at connect
    assert len(bluesky.records()) == 1


def test_bluesky_revoked_app_password_blocks_the_channel_and_tells_the_author(pipeline, bluesky, outbox):
    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "gone.bsky.test")
    bluesky.revoke_account("gone.bsky.test")
    pipeline.schedule(tenant, owner, [channel], "Anyone there?")

    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.BLOCKED
    assert target.channel.health is ChannelHealth.NEEDS_RECONNECT
    assert [m["Subject"] for m in outbox.to(owner.email)] == ["Reconnect @gone.bsky.test to keep publishing"]
    assert bluesky.records() == []


def test_bluesky_text_over_300_graphemes_is_refused_when_scheduling(app, bluesky):
    from saas.posts import service as post_service

    tenant, owner = make_workspace()
    channel = connect_bluesky(tenant, bluesky, "long.bsky.test")
    with app_context(), tenant_session(tenant.id) as session:
        schedule = post_service.Schedule(publish_now=True, local_time=None, timezone="UTC")
        with pytest.raises(post_service.ComposeError, match="300"):
            post_service.schedule_post(
                session, author_id=owner.id, text="ü" * 301, channel_ids=[channel.id], schedule=schedule
            )
