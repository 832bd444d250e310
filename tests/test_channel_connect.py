"""Connecting Mastodon (authorization code with PKCE) and Bluesky (app password) from the Channels page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask

from saas.channels import service as channel_service
from saas.channels.models import Channel, MastodonApp
from tenants import system_session, tenant_session
from tests.factories import PASSWORD, app_context, make_workspace
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.dns import StubResolver
from tests.fakes.mastodon import FakeMastodon


@pytest.fixture
def mastodon(app: Flask) -> Iterator[FakeMastodon]:
    app.extensions.pop("publishers", None)
    with FakeMastodon(authorizing_username="bluebell") as fake:
        yield fake
    app.extensions.pop("publishers", None)


@pytest.fixture
def bluesky(app: Flask) -> Iterator[FakeBluesky]:
    app.extensions.pop("publishers", None)
    with FakeBluesky() as fake:
        fake.add_account("bluebell.bsky.test", "abcd-efgh-ijkl-mnop")
        yield fake
    app.extensions.pop("publishers", None)


@pytest.fixture
def owner_client(client):
    tenant, owner = make_workspace(name="Bluebell Bakery")
    client.log_in(owner.email, PASSWORD)
    client.tenant = tenant
    return client


def channels_of(tenant) -> list[Channel]:
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(Channel)))


def start_mastodon(client, fake: FakeMastodon) -> str:
    """Submit the instance address; returns where Multipost sent the browser (the instance's authorize page)."""
    page = f"/w/{client.tenant.slug}/channels/mastodon"
    response = client.submit(page, {"instance": fake.base_url}, page=page)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.headers["Refresh"].removeprefix("0; url=")  # not a 302: see saas/web/offsite.py


def approve(authorize_url: str) -> tuple[str, dict[str, str]]:
    """The person approves on the instance: its redirect back to us, as (path, query)."""
    answer = httpx.get(authorize_url)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    return back.path, {k: v[0] for k, v in parse_qs(back.query).items()}


def test_mastodon_connect_flow_end_to_end(owner_client, mastodon):
    authorize = start_mastodon(owner_client, mastodon)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{mastodon.base_url}/oauth/authorize?")
    assert query["redirect_uri"] == ["http://localhost/channels/mastodon/callback"]
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]

    path, params = approve(authorize)
    forwarded = owner_client.get(f"{path}?{urlencode(params)}")
    assert forwarded.status_code == 302
    assert urlsplit(forwarded.headers["Location"]).path == f"/w/{owner_client.tenant.slug}/channels/mastodon/callback"
    done = owner_client.get(forwarded.headers["Location"])

    assert done.status_code == 302 and done.headers["Location"].endswith("/channels")
    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.handle) == ("mastodon", f"bluebell@{mastodon.host_name}")
    assert channel.limits == {"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23}
    with app_context():
        credentials = channel_service.load_credentials(channel)
    assert credentials.extra["instance_url"] == mastodon.base_url
    assert credentials.access_token not in (channel.credentials_sealed or "")
    [token_request] = mastodon.journal.entries("POST", "/oauth/token")
    assert token_request.body["code_verifier"]
    assert [e.path for e in mastodon.journal.entries("GET", "/api/")] == [
        "/api/v1/accounts/verify_credentials",
        "/api/v1/accounts/verify_credentials",
        "/api/v2/instance",
    ]


def test_mastodon_app_is_registered_once_per_instance(owner_client, mastodon):
    start_mastodon(owner_client, mastodon)
    start_mastodon(owner_client, mastodon)

    assert len(mastodon.journal.entries("POST", "/api/v1/apps")) == 1
    with app_context(), system_session() as session:
        [app] = session.scalars(sa.select(MastodonApp)).all()
    assert app.instance_url == mastodon.base_url and "secret" not in app.client_secret_sealed


def test_mastodon_callback_with_the_wrong_state_is_refused_and_stores_nothing(owner_client, mastodon):
    path, params = approve(start_mastodon(owner_client, mastodon))
    forwarded = owner_client.get(f"{path}?{urlencode(params | {'state': 'forged'})}")

    refused = owner_client.get(forwarded.headers["Location"])

    assert refused.status_code == 400
    assert "did not start here" in refused.get_data(as_text=True)
    assert channels_of(owner_client.tenant) == []
    assert mastodon.journal.entries("POST", "/oauth/token") == []  # the code was never exchanged
    again = owner_client.get(forwarded.headers["Location"].replace("forged", params["state"]))
    assert again.status_code == 400  # the attempt is used up either way


def test_mastodon_callback_without_a_started_sign_in_is_refused(owner_client, mastodon):
    response = owner_client.get("/channels/mastodon/callback?code=abc&state=def")
    assert response.status_code == 400
    assert channels_of(owner_client.tenant) == []


def test_mastodon_unreachable_server_is_explained_on_the_form(owner_client):
    page = f"/w/{owner_client.tenant.slug}/channels/mastodon"
    response = owner_client.submit(page, {"instance": "http://127.0.0.1:9"}, page=page)
    assert response.status_code == 422
    assert "Could not reach Mastodon" in response.get_data(as_text=True)


@pytest.fixture
def public_dns(app: Flask) -> Iterator[StubResolver]:
    resolver = StubResolver({"intranet.example": ["10.0.0.5"], "metadata.example": ["169.254.169.254"]})
    app.extensions["fetch_resolver"] = resolver
    app.extensions.pop("publishers", None)  # adapters take the resolver when they are made
    yield resolver
    app.extensions.pop("fetch_resolver")
    app.extensions.pop("publishers", None)


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        ("https://intranet.example", "address 10.0.0.5 is private"),
        ("https://metadata.example", "169.254.169.254 is the cloud metadata address"),
        ("http://127.1:{port}", "127.0.0.1 is loopback"),
        ("http://[::ffff:127.0.0.1]:{port}", "is loopback"),
    ],
)
def test_mastodon_instance_on_our_own_network_is_refused_before_any_request(
    owner_client, mastodon, public_dns, instance, reason
):
    page = f"/w/{owner_client.tenant.slug}/channels/mastodon"
    response = owner_client.submit(page, {"instance": instance.format(port=mastodon.port)}, page=page)
    assert response.status_code == 422
    assert reason in response.get_data(as_text=True)
    assert mastodon.journal.entries() == []


def test_bluesky_server_on_our_own_network_is_refused(owner_client, bluesky, public_dns):
    page = f"/w/{owner_client.tenant.slug}/channels/bluesky"
    form = {
        "identifier": "bluebell.bsky.test",
        "app_password": "abcd-efgh-ijkl-mnop",
        "pds_url": "https://intranet.example",
    }

    response = owner_client.submit(page, form, page=page)

    assert response.status_code == 422
    assert "address 10.0.0.5 is private" in response.get_data(as_text=True)
    assert channels_of(owner_client.tenant) == []
    assert public_dns.lookups == ["intranet.example"]


def test_bluesky_connect_creates_one_session_and_seals_its_tokens(owner_client, bluesky):
    page = f"/w/{owner_client.tenant.slug}/channels/bluesky"
    form = {"identifier": "bluebell.bsky.test", "app_password": "abcd-efgh-ijkl-mnop", "pds_url": bluesky.base_url}

    response = owner_client.submit(page, form, page=page)

    assert response.status_code == 302
    [channel] = channels_of(owner_client.tenant)
    assert (channel.network, channel.handle) == ("bluesky", "bluebell.bsky.test")
    assert channel.remote_id.startswith("did:plc:")
    with app_context():
        credentials = channel_service.load_credentials(channel)
    assert credentials.refresh_token and credentials.expires_at is not None
    assert credentials.extra["pds_url"] == bluesky.base_url
    assert "abcd-efgh" not in (channel.credentials_sealed or "")
    assert [e.path for e in bluesky.journal.entries()] == ["/xrpc/com.atproto.server.createSession"]


def test_bluesky_wrong_app_password_is_explained_and_stores_nothing(owner_client, bluesky):
    page = f"/w/{owner_client.tenant.slug}/channels/bluesky"
    form = {"identifier": "bluebell.bsky.test", "app_password": "nope-nope-nope-nope", "pds_url": bluesky.base_url}

    response = owner_client.submit(page, form, page=page)

    assert response.status_code == 422
    assert "did not accept that handle and app password" in response.get_data(as_text=True)
    assert channels_of(owner_client.tenant) == []


def test_editors_cannot_connect_channels(client, mastodon):
    from tenants.models import Role
    from tests.factories import add_member, make_user

    tenant, _owner = make_workspace()
    editor = make_user()
    add_member(tenant, editor, Role.EDITOR)
    client.log_in(editor.email, PASSWORD)
    page = f"/w/{tenant.slug}/channels/mastodon"
    assert client.get(page).status_code == 403
    assert client.submit(page, {"instance": mastodon.base_url}).status_code == 403
    assert mastodon.journal.entries() == []


def test_a_connected_channel_is_in_the_audit_log_by_handle(owner_client, bluesky):
    page = f"/w/{owner_client.tenant.slug}/channels/bluesky"
    form = {"identifier": "bluebell.bsky.test", "app_password": "abcd-efgh-ijkl-mnop", "pds_url": bluesky.base_url}
    owner_client.submit(page, form, page=page)

    log = owner_client.get(f"/w/{owner_client.tenant.slug}/audit?kind=channels").get_data(as_text=True)

    assert "Connected a channel: Connected Bluesky @bluebell.bsky.test" in log
    assert "abcd-efgh" not in log
