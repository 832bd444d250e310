"""Connecting X, LinkedIn, Facebook Pages, Instagram and Threads from the Channels page, against their fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask

from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth
from saas.posts import service as post_service
from saas.posts.models import PostTarget, TargetState
from tenants import tenant_session
from tenants.models import Role
from tests.factories import PASSWORD, add_member, app_context, make_workspace
from tests.fakes import graph
from tests.fakes.facebook import FakeFacebook
from tests.fakes.instagram import FakeInstagram
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.threads import FakeThreads
from tests.fakes.x import FakeX


def _configure(app: Flask, network: str, settings: dict[str, str]) -> Iterator[None]:
    key = f"{network.upper()}_SETTINGS"
    previous = app.config[key]
    app.config[key] = previous | settings
    app.extensions.pop("publishers", None)
    yield
    app.config[key] = previous
    app.extensions.pop("publishers", None)


@pytest.fixture
def x(app: Flask) -> Iterator[FakeX]:
    from tests.fakes.x import CLIENT_ID, CLIENT_SECRET

    with FakeX(authorizing_username="bluebell") as fake:
        settings = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_url": fake.base_url,
            "authorize_url": f"{fake.base_url}/i/oauth2/authorize",
        }
        yield from (fake for _ in _configure(app, "x", settings))


@pytest.fixture
def linkedin(app: Flask) -> Iterator[FakeLinkedIn]:
    from tests.fakes.linkedin import CLIENT_ID, CLIENT_SECRET

    with FakeLinkedIn(authorizing_member="bluebell") as fake:
        settings = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_url": fake.base_url,
            "authorize_url": f"{fake.base_url}/oauth/v2/authorization",
            "token_url": f"{fake.base_url}/oauth/v2/accessToken",
        }
        yield from (fake for _ in _configure(app, "linkedin", settings))


def _meta(fake: graph.FakeGraph) -> dict[str, str]:
    return {
        "client_id": graph.CLIENT_ID,
        "client_secret": graph.CLIENT_SECRET,
        "graph_url": fake.base_url,
        "dialog_url": fake.base_url,
        "authorize_url": f"{fake.base_url}/oauth/authorize",
    }


@pytest.fixture
def facebook(app: Flask) -> Iterator[FakeFacebook]:
    with FakeFacebook(authorizing_user="bluebell") as fake:
        yield from (fake for _ in _configure(app, "facebook_pages", _meta(fake)))


@pytest.fixture
def instagram(app: Flask) -> Iterator[FakeInstagram]:
    with FakeInstagram(authorizing_user="bluebell") as fake:
        yield from (fake for _ in _configure(app, "instagram", _meta(fake)))


@pytest.fixture
def threads(app: Flask) -> Iterator[FakeThreads]:
    with FakeThreads(authorizing_user="bluebell") as fake:
        yield from (fake for _ in _configure(app, "threads", _meta(fake)))


@pytest.fixture
def owner_client(client):
    tenant, owner = make_workspace(name="Bluebell Bakery")
    client.log_in(owner.email, PASSWORD)
    client.tenant, client.owner = tenant, owner
    return client


def channels_of(tenant) -> list[Channel]:
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(Channel).order_by(Channel.id)))


def sign_in(client, network: str) -> tuple[str, dict[str, str]]:
    """Press "Connect <network>", approve on the network: its redirect back to us as (path, query)."""
    page = f"/w/{client.tenant.slug}/channels"
    started = client.submit(f"{page}/connect", {"network": network}, page=page)
    assert started.status_code == 200, started.get_data(as_text=True)
    answer = httpx.get(started.headers["Refresh"].removeprefix("0; url="))
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    return back.path, {k: v[0] for k, v in parse_qs(back.query).items()}


def come_back(client, path: str, params: dict[str, str]):
    """Our workspace-less callback forwards to the workspace that started the sign-in."""
    forwarded = client.get(f"{path}?{urlencode(params)}")
    assert forwarded.status_code == 302
    return client.get(forwarded.headers["Location"])


def pick(client, remote_ids: list[str]):
    page = f"/w/{client.tenant.slug}/channels/connect/pick"
    return client.submit(page, {"account": remote_ids}, page=page)


def test_x_connects_in_one_step_with_pkce_and_seals_rotating_tokens(owner_client, x):
    path, params = sign_in(owner_client, "x")
    assert path == "/channels/oauth/callback"

    done = come_back(owner_client, path, params)

    assert done.status_code == 302 and done.headers["Location"].endswith("/channels")
    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.handle) == ("x", "bluebell")
    with app_context(), tenant_session(owner_client.tenant.id) as session:
        credentials = channel_service.load_credentials(session.get(Channel, channel.id))
    assert credentials.refresh_token and credentials.expires_at is not None
    assert "bluebell" not in (channel.credentials_sealed or "")


@pytest.mark.parametrize("network", ["x", "linkedin", "facebook_pages", "instagram", "threads"])
def test_a_callback_with_the_wrong_state_is_refused_and_stores_nothing(
    owner_client, x, linkedin, facebook, instagram, threads, network
):
    path, params = sign_in(owner_client, network)

    refused = come_back(owner_client, path, params | {"state": "forged"})

    assert refused.status_code == 400
    assert "did not start here" in refused.get_data(as_text=True)
    assert channels_of(owner_client.tenant) == []


def test_linkedin_login_offers_the_member_and_their_organizations_to_pick_from(owner_client, linkedin):
    org_id = linkedin.add_organization("Bluebell Bakery Ltd", ["bluebell"])
    path, params = sign_in(owner_client, "linkedin")

    offer = come_back(owner_client, path, params)
    assert offer.status_code == 302
    page = owner_client.get(offer.headers["Location"]).get_data(as_text=True)
    assert "Bluebell Bakery Ltd" in page and "organization" in page
    nothing = pick(owner_client, [])
    done = pick(owner_client, [f"urn:li:organization:{org_id}"])

    assert nothing.status_code == 422 and "Choose at least one" in nothing.get_data(as_text=True)
    assert done.status_code == 302
    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.remote_id) == ("linkedin", f"urn:li:organization:{org_id}")


def test_facebook_login_connects_only_the_pages_picked(owner_client, facebook):
    bakery = facebook.add_page("Bakery", "bluebell")
    facebook.add_page("Café", "bluebell")
    path, params = sign_in(owner_client, "facebook_pages")
    come_back(owner_client, path, params)

    pick(owner_client, [bakery])

    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.display_name) == ("facebook_pages", "Bakery")
    with app_context(), tenant_session(owner_client.tenant.id) as session:
        credentials = channel_service.load_credentials(session.get(Channel, channel.id))
    assert credentials.access_token == facebook.pages[bakery]["token"]  # the Page's own token


def test_instagram_login_offers_the_business_accounts_behind_the_pages(owner_client, instagram):
    ig_id = instagram.add_account("bluebell.bakery", "bluebell")
    path, params = sign_in(owner_client, "instagram")
    come_back(owner_client, path, params)

    pick(owner_client, [ig_id])

    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.handle) == ("instagram", "bluebell.bakery")


def test_threads_connects_in_one_step(owner_client, threads):
    path, params = sign_in(owner_client, "threads")
    come_back(owner_client, path, params)

    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.handle) == ("threads", "bluebell")


def test_a_pick_started_in_one_workspace_cannot_be_taken_in_another(owner_client, facebook):
    page_id = facebook.add_page("Bakery", "bluebell")
    other, _ = make_workspace(name="Other Shop")
    add_member(other, owner_client.owner, Role.OWNER)
    path, params = sign_in(owner_client, "facebook_pages")
    come_back(owner_client, path, params)

    page = f"/w/{other.slug}/channels/connect/pick"
    elsewhere = owner_client.submit(page, {"account": [page_id]}, page=f"/w/{other.slug}/channels")

    assert elsewhere.status_code == 400 and "expired or was already made" in elsewhere.get_data(as_text=True)
    assert channels_of(other) == [] and channels_of(owner_client.tenant) == []


def test_the_picker_is_gone_once_used(owner_client, facebook):
    page_id = facebook.add_page("Bakery", "bluebell")
    path, params = sign_in(owner_client, "facebook_pages")
    come_back(owner_client, path, params)
    pick(owner_client, [page_id])

    again = owner_client.get(f"/w/{owner_client.tenant.slug}/channels/connect/pick")

    assert again.status_code == 400 and "expired or was already made" in again.get_data(as_text=True)


def test_reconnecting_keeps_the_channel_and_its_scheduled_posts(owner_client, x):
    path, params = sign_in(owner_client, "x")
    come_back(owner_client, path, params)
    [channel] = channels_of(owner_client.tenant)
    tenant = owner_client.tenant
    with app_context(), tenant_session(tenant.id) as session:
        later = (datetime.now(UTC) + timedelta(days=3)).replace(tzinfo=None, microsecond=0)
        post_service.schedule_post(
            session,
            author_id=owner_client.owner.id,
            text="Thursday's bake",
            channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=False, local_time=later, timezone="UTC"),
        )
        session.get(Channel, channel.id).health = ChannelHealth.NEEDS_RECONNECT
        session.commit()
    x.revoke_account("bluebell")

    reconnect = owner_client.submit(
        f"/w/{tenant.slug}/channels/{channel.id}/reconnect", page=f"/w/{tenant.slug}/channels"
    )
    answer = httpx.get(reconnect.headers["Refresh"].removeprefix("0; url="))
    back = urlsplit(answer.headers["location"])
    come_back(owner_client, back.path, {k: v[0] for k, v in parse_qs(back.query).items()})

    [again] = channels_of(tenant)
    assert again.id == channel.id and again.health is ChannelHealth.OK
    with app_context(), tenant_session(tenant.id) as session:
        [target] = session.scalars(sa.select(PostTarget))
        assert target.channel_id == channel.id and target.state is TargetState.SCHEDULED
