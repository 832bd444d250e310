"""The client connects its own account through a link the agency emailed: no login, no password shared,
for that workspace only, once, until it expires."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import sqlalchemy as sa

from saas.channels import service as channel_service
from saas.channels.models import ConnectLink
from tenants import tenant_session
from tenants.models import TenantKind
from tests.factories import PASSWORD, app_context, make_tenant, make_user, make_workspace
from tests.test_channel_connect import approve, bluesky, mastodon  # noqa: F401  (the fakes' fixtures)
from tests.test_oauth_connect import channels_of, facebook, x  # noqa: F401

CLIENT_EMAIL = "owner@bluebell.example"


def send_link(client, tenant) -> None:
    page = f"/w/{tenant.slug}/channels"
    sent = client.submit(f"{page}/connect-link", {"email": CLIENT_EMAIL}, page=page)
    assert f"Sent a connect link to {CLIENT_EMAIL}" in client.get(sent.location).get_data(as_text=True)


def sign_in_through(visitor, link: str, network: str = "x") -> str:
    """Open the link, connect the network, approve there: returns where our callback sends the browser."""
    assert "Connect X" in visitor.get(link).get_data(as_text=True)
    started = visitor.submit(f"{link}/start", {"network": network}, page=link)
    assert started.status_code == 200, started.get_data(as_text=True)
    answer = httpx.get(started.headers["Refresh"].removeprefix("0; url="))
    back = urlsplit(answer.headers["location"])
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    forwarded = visitor.get(f"{back.path}?{urlencode(params)}")
    assert forwarded.status_code == 302
    return forwarded.headers["Location"]


def test_client_connects_its_account_through_the_link_once(client, make_client, outbox, x):  # noqa: F811
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=make_user())
    elsewhere, _ = make_workspace(name="Elsewhere")
    client.log_in(agency_owner.email, PASSWORD)
    send_link(client, bluebell)
    link = outbox.link_in_last(CLIENT_EMAIL)
    assert "Northwind Social asks you to connect" in outbox.last_to(CLIENT_EMAIL).get_content()

    visitor = make_client()  # no account, not logged in
    done = visitor.get(sign_in_through(visitor, link))

    assert done.status_code == 200
    assert "Connected @bluebell on X to Bluebell Bakery" in done.get_data(as_text=True)
    assert [(c.network, c.handle) for c in channels_of(bluebell)] == [("x", "bluebell")]
    assert channels_of(elsewhere) == []
    again = visitor.get(link)
    assert again.status_code == 404 and "already been used" in again.get_data(as_text=True)


def test_expired_or_tampered_links_are_refused(client, make_client, outbox):
    tenant, owner = make_workspace(name="Bluebell Bakery")
    client.log_in(owner.email, PASSWORD)
    send_link(client, tenant)
    link = outbox.link_in_last(CLIENT_EMAIL)
    visitor = make_client()
    assert visitor.get(link[:-2] + "xx").status_code == 404
    assert visitor.submit(f"{link[:-2]}xx/start", {"network": "x"}, page="/login").status_code == 404
    with app_context(), tenant_session(tenant.id) as session:
        session.execute(sa.update(ConnectLink).values(expires_at=sa.func.now()))
        session.commit()
    expired = visitor.get(link)
    assert expired.status_code == 404 and "expired" in expired.get_data(as_text=True)
    assert channels_of(tenant) == []


def test_client_picks_which_pages_to_connect_through_the_link(client, make_client, outbox, facebook):  # noqa: F811
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=make_user())
    bakery = facebook.add_page("Bluebell Bakery", "bluebell")
    facebook.add_page("Private Club", "bluebell")  # the client's other Page: not for the agency
    client.log_in(agency_owner.email, PASSWORD)
    send_link(client, bluebell)
    link = outbox.link_in_last(CLIENT_EMAIL)
    visitor = make_client()

    finished = visitor.get(sign_in_through(visitor, link, "facebook_pages"))
    assert finished.status_code == 302
    picker = finished.headers["Location"]
    assert picker.endswith("/pick")
    page = visitor.get(picker).get_data(as_text=True)
    assert "Bluebell Bakery" in page and "Private Club" in page
    assert channels_of(bluebell) == []  # nothing connected before the choice
    nothing = visitor.submit(picker, {}, page=picker)
    assert nothing.status_code == 422 and "Tick at least one account" in nothing.get_data(as_text=True)

    done = visitor.submit(picker, {"account": [bakery]}, page=picker)

    assert done.status_code == 200 and "Bakery on Facebook Pages to Bluebell Bakery" in done.get_data(as_text=True)
    assert [(c.network, c.display_name) for c in channels_of(bluebell)] == [("facebook_pages", "Bluebell Bakery")]
    assert visitor.get(link).status_code == 404  # spent
    assert visitor.get(picker).status_code == 404  # and its picker with it


def client_link(client, outbox) -> tuple:
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=make_user())
    client.log_in(agency_owner.email, PASSWORD)
    send_link(client, bluebell)
    return bluebell, outbox.link_in_last(CLIENT_EMAIL)


def test_client_connects_mastodon_on_its_own_server_through_the_link(client, make_client, outbox, mastodon):  # noqa: F811
    bluebell, link = client_link(client, outbox)
    visitor = make_client()
    refused = visitor.submit(f"{link}/mastodon", {"instance": "not a server"}, page=f"{link}/mastodon")
    assert refused.status_code == 422 and channels_of(bluebell) == []

    started = visitor.submit(f"{link}/mastodon", {"instance": mastodon.base_url}, page=f"{link}/mastodon")
    path, params = approve(started.headers["Refresh"].removeprefix("0; url="))
    forwarded = visitor.get(f"{path}?{urlencode(params)}")  # our callback: no login, the link's sign-in
    done = visitor.get(forwarded.headers["Location"])

    assert done.status_code == 200 and "on Mastodon to Bluebell Bakery" in done.get_data(as_text=True)
    assert [c.network for c in channels_of(bluebell)] == ["mastodon"]
    assert visitor.get(link).status_code == 404  # spent


def test_client_connects_bluesky_with_an_app_password_the_agency_never_sees(
    client,
    make_client,
    outbox,
    bluesky,  # noqa: F811
):
    bluebell, link = client_link(client, outbox)
    visitor = make_client()
    form = {"identifier": "bluebell.bsky.test", "pds_url": bluesky.base_url}
    wrong = visitor.submit(
        f"{link}/bluesky", {**form, "app_password": "wrong-wrong-wrong-wrong"}, page=f"{link}/bluesky"
    )
    assert wrong.status_code == 422 and channels_of(bluebell) == []
    assert visitor.get(link).status_code == 200  # a failed try does not spend the link

    done = visitor.submit(f"{link}/bluesky", {**form, "app_password": "abcd-efgh-ijkl-mnop"}, page=f"{link}/bluesky")

    assert done.status_code == 200 and "on Bluesky to Bluebell Bakery" in done.get_data(as_text=True)
    [channel] = channels_of(bluebell)
    assert channel.network == "bluesky"
    with app_context():  # only the session Bluesky gave is kept, never the app password itself
        assert "abcd-efgh-ijkl-mnop" not in repr(channel_service.load_credentials(channel))
    assert visitor.get(link).status_code == 404
