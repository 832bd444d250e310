"""The compose form, the post page and its actions, the channels page, notifications."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas.channels.models import Channel, ChannelHealth
from saas.posts.models import Post, PostTarget, TargetState
from saas.sandbox.models import SandboxAccount
from tenants import tenant_session
from tenants.models import Role
from tests.factories import PASSWORD, app_context, make_workspace


def _posts(tenant):
    with app_context(), tenant_session(tenant.id) as session:
        posts = list(session.scalars(sa.select(Post).order_by(Post.id)))
        for p in posts:
            _ = p.targets
        return posts


def _next_spring_forward(zone: str) -> datetime:
    """The first wall-clock minute skipped by daylight saving in `zone` within the next two years."""
    tz = zoneinfo.ZoneInfo(zone)
    day = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    for _ in range(730):
        for hour in range(24):
            local = day.replace(hour=hour, minute=30)
            if local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
                return local
        day += timedelta(days=1)
    raise AssertionError(f"{zone} has no daylight saving change")


NEXT_MONTH = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")


@pytest.fixture
def workspace(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    channel = pipeline.connect(tenant, "bluebell")
    client.log_in(owner.email, PASSWORD)
    return tenant, owner, channel


def compose(client, tenant, **fields):
    page = f"/w/{tenant.slug}/posts/new"
    return client.submit(page, fields, page=page)


def test_compose_schedules_in_the_workspace_time_zone(client, workspace):
    tenant, _, channel = workspace
    when = (datetime.now(UTC) + timedelta(days=3)).astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    response = compose(
        client,
        tenant,
        text="Fresh bread tomorrow",
        channels=str(channel.id),
        date=when.strftime("%Y-%m-%d"),
        time=when.strftime("%H:%M"),
    )
    assert response.status_code == 302
    [post] = _posts(tenant)
    expected = when.replace(second=0, microsecond=0).astimezone(UTC)
    assert post.scheduled_at == expected
    assert post.timezone == "Europe/Berlin"
    [target] = post.targets
    assert (target.state, target.due_at) == (TargetState.SCHEDULED, expected)
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert " UTC" in detail and "in Europe/Berlin" in detail  # the reader's zone, and the zone it was chosen in
    assert "Fresh bread tomorrow" in detail


def test_publish_now_goes_out_on_the_next_dispatch(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    compose(client, tenant, text="Open now!", channels=str(channel.id), publish_now="y")
    pipeline.run_once()
    [post] = _posts(tenant)
    page = client.get(f"/w/{tenant.slug}/posts/{post.id}").get_data(as_text=True)
    assert "Published" in page and "view the post" in page
    assert [p.text for p in network.posts("bluebell")] == ["Open now!"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "", "publish_now": "y"}, "Write the text of the post."),
        ({"text": "   ", "publish_now": "y"}, "Write the text of the post."),
        ({"text": "x" * 501, "publish_now": "y"}, "Sandbox allows 500 characters; this text counts as 501."),
        ({"text": "x" * 10_001, "publish_now": "y"}, "Use at most 10,000 characters."),
        ({"text": "Hello"}, "Choose a date and time"),
        ({"text": "Hello", "date": "2020-01-01", "time": "09:00"}, "has already passed"),
        ({"text": "Hello", "date": "2099-01-01", "time": "09:00"}, "up to two years ahead"),
        ({"text": "Hello", "date": "not-a-date", "time": "25:99"}, "Not a valid date value."),
    ],
)
def test_compose_bad_input_is_explained_and_nothing_is_saved(client, workspace, fields, message):
    tenant, _, channel = workspace
    response = compose(client, tenant, channels=str(channel.id), **fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _posts(tenant) == []


def test_compose_refuses_a_time_skipped_by_daylight_saving(client, workspace):
    tenant, _, channel = workspace
    skipped = _next_spring_forward("Europe/Berlin")
    response = compose(
        client,
        tenant,
        text="Hello",
        channels=str(channel.id),
        date=skipped.strftime("%Y-%m-%d"),
        time=skipped.strftime("%H:%M"),
    )
    assert response.status_code == 422
    assert "the clocks skip that hour" in response.get_data(as_text=True)
    assert _posts(tenant) == []


def test_compose_needs_a_channel_and_refuses_another_tenants_channel(client, workspace, pipeline):
    tenant, _, _ = workspace
    other, _ = make_workspace()
    foreign = pipeline.connect(other, "foreign")
    assert "Choose at least one channel." in compose(client, tenant, text="Hi", publish_now="y").get_data(as_text=True)
    response = compose(client, tenant, text="Hi", publish_now="y", channels=str(foreign.id))
    assert response.status_code == 422
    assert "no longer exists" in response.get_data(as_text=True)
    assert _posts(tenant) == [] and _posts(other) == []


def test_compose_without_channels_shows_how_to_connect_one(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/posts/new").get_data(as_text=True)
    assert "Connect a channel first" in page


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.VIEWER])
def test_reviewers_and_viewers_cannot_compose(client, pipeline, role):
    tenant, member = make_workspace(role=role)
    channel = pipeline.connect(tenant, "readonly")
    client.log_in(member.email, PASSWORD)
    assert client.get(f"/w/{tenant.slug}/posts/new").status_code == 403
    response = client.submit(
        f"/w/{tenant.slug}/posts/new",
        {"text": "x", "channels": str(channel.id), "publish_now": "y"},
        page=f"/w/{tenant.slug}/posts",
    )
    assert response.status_code == 403
    assert _posts(tenant) == []


def _make_unconfirmed(client, tenant, channel, pipeline, network):
    compose(client, tenant, text="Did it go?", channels=str(channel.id), publish_now="y")
    network.controls.add_fault("refuse", method="POST", path="/api/v1/posts")
    pipeline.run_once()
    with app_context(), tenant_session(tenant.id) as session:
        session.execute(
            sa.update(PostTarget).values(
                outcome_unknown_since=sa.func.now() - sa.text("interval '2 hours'"), due_at=sa.func.now()
            )
        )
        session.commit()
    network.controls.add_fault("status", method="GET", path="/api/v1/posts", status=503, times=3)
    pipeline.run_once()
    [post] = _posts(tenant)
    [target] = post.targets
    assert target.state is TargetState.UNCONFIRMED
    return post, target


def test_unconfirmed_post_shows_why_and_what_to_do(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    post, _ = _make_unconfirmed(client, tenant, channel, pipeline, network)
    page = client.get(f"/w/{tenant.slug}/posts/{post.id}").get_data(as_text=True)
    for text in ("Unconfirmed", "Check again", "Mark as published", "Publish again", "Attempt log"):
        assert text in page


def test_mark_unconfirmed_as_published(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    post, target = _make_unconfirmed(client, tenant, channel, pipeline, network)
    url = f"/w/{tenant.slug}/posts/{post.id}/targets/{target.id}/mark-published"
    client.submit(url, {"url": "https://sandbox.example/@bluebell/1"}, page=f"/w/{tenant.slug}/posts")
    [post] = _posts(tenant)
    assert post.targets[0].state is TargetState.PUBLISHED
    assert post.targets[0].remote_url == "https://sandbox.example/@bluebell/1"


def test_publish_again_uses_a_new_key_and_posts(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    post, target = _make_unconfirmed(client, tenant, channel, pipeline, network)
    client.submit(f"/w/{tenant.slug}/posts/{post.id}/targets/{target.id}/publish-again", page=f"/w/{tenant.slug}/posts")
    pipeline.run_once()
    [post] = _posts(tenant)
    assert post.targets[0].state is TargetState.PUBLISHED
    assert post.targets[0].idempotency_key != target.idempotency_key
    assert len(network.posts("bluebell")) == 1


def test_check_again_reads_back_and_finds_it(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    post, target = _make_unconfirmed(client, tenant, channel, pipeline, network)
    # It had gone out after all (the refused connection hid a late success, say): now it can be found.
    import httpx

    from saas.channels import service as channel_service

    with app_context(), tenant_session(tenant.id) as session:
        creds = channel_service.load_credentials(session.get(Channel, channel.id))
    httpx.post(
        f"{network.base_url}/api/v1/posts",
        json={"text": "Did it go?"},
        headers={"Authorization": f"Bearer {creds.access_token}"},
    ).raise_for_status()
    network.controls.clear_faults()
    client.submit(f"/w/{tenant.slug}/posts/{post.id}/targets/{target.id}/check", page=f"/w/{tenant.slug}/posts")
    pipeline.run_once()
    [post] = _posts(tenant)
    assert post.targets[0].state is TargetState.PUBLISHED
    assert len(network.posts("bluebell")) == 1


def test_actions_that_do_not_fit_the_state_are_explained(client, workspace):
    tenant, _, channel = workspace
    compose(client, tenant, text="Later", channels=str(channel.id), date=NEXT_MONTH, time="09:00")
    [post] = _posts(tenant)
    [target] = post.targets
    response = client.submit(
        f"/w/{tenant.slug}/posts/{post.id}/targets/{target.id}/publish-again", page=f"/w/{tenant.slug}/posts"
    )
    assert "Only an unconfirmed post can be published again." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert (
        client.submit(
            f"/w/{tenant.slug}/posts/{post.id}/targets/{target.id}/explode", page=f"/w/{tenant.slug}/posts"
        ).status_code
        == 404
    )


def test_cancel_a_scheduled_target(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    compose(client, tenant, text="Never mind", channels=str(channel.id), date=NEXT_MONTH, time="09:00")
    [post] = _posts(tenant)
    client.submit(
        f"/w/{tenant.slug}/posts/{post.id}/targets/{post.targets[0].id}/cancel", page=f"/w/{tenant.slug}/posts"
    )
    [post] = _posts(tenant)
    assert post.targets[0].state is TargetState.CANCELED
    assert post.state.value == "canceled"


def test_connect_a_sandbox_channel(client):
    tenant, owner = make_workspace(name="Harbor Dental")
    client.log_in(owner.email, PASSWORD)
    assert "Connect the social accounts" in client.get(f"/w/{tenant.slug}/channels").get_data(as_text=True)
    client.submit(f"/w/{tenant.slug}/channels/sandbox", page=f"/w/{tenant.slug}/channels")
    page = client.get(f"/w/{tenant.slug}/channels").get_data(as_text=True)
    assert "@harbordental" in page and "Connected" in page
    with app_context(), tenant_session(tenant.id) as session:
        [channel] = session.scalars(sa.select(Channel)).all()
        assert "sbx_at_" not in (channel.credentials_sealed or "")  # sealed, not in clear
        assert session.get(SandboxAccount, channel.remote_id) is not None


def test_reconnect_a_channel_that_lost_access(client, workspace):
    tenant, _, channel = workspace
    client.submit(f"/w/{tenant.slug}/channels/sandbox", page=f"/w/{tenant.slug}/channels")
    with app_context(), tenant_session(tenant.id) as session:
        own = session.scalars(sa.select(Channel).where(Channel.handle == "bluebellbakery")).one()
        own.health = ChannelHealth.NEEDS_RECONNECT
        own.health_reason = "Sandbox no longer accepts this connection"
        session.commit()
        own_id = own.id
    page = client.get(f"/w/{tenant.slug}/channels").get_data(as_text=True)
    assert "Needs reconnecting" in page and "no longer accepts" in page
    client.submit(f"/w/{tenant.slug}/channels/{own_id}/reconnect", page=f"/w/{tenant.slug}/channels")
    with app_context(), tenant_session(tenant.id) as session:
        assert session.get(Channel, own_id).health is ChannelHealth.OK


def test_notifications_page_lists_and_marks_read(client, workspace, pipeline, network):
    tenant, _, channel = workspace
    network.controls.add_fault(
        "status", method="POST", path="/api/v1/posts", status=422, body={"error": "Text contains a banned word"}
    )
    compose(client, tenant, text="Forbidden", channels=str(channel.id), publish_now="y")
    pipeline.run_once()
    page = client.get(f"/w/{tenant.slug}/notifications").get_data(as_text=True)
    assert "A post failed to publish to @bluebell" in page and "banned word" in page
    assert "unread" in client.get(f"/w/{tenant.slug}/calendar").get_data(as_text=True)
    client.submit(f"/w/{tenant.slug}/notifications/read", page=f"/w/{tenant.slug}/notifications")
    assert "unread</span>" not in client.get(f"/w/{tenant.slug}/calendar").get_data(as_text=True)


def test_posts_page_lists_posts_with_their_channels_and_state(client, workspace):
    tenant, _, channel = workspace
    assert "No posts yet" in client.get(f"/w/{tenant.slug}/posts").get_data(as_text=True)
    compose(client, tenant, text="Weekend opening hours", channels=str(channel.id), date=NEXT_MONTH, time="09:00")
    page = client.get(f"/w/{tenant.slug}/posts").get_data(as_text=True)
    assert "Weekend opening hours" in page and "@bluebell" in page and "Scheduled" in page
