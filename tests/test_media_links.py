"""Signed addresses of library files: what networks that download media (Meta) fetch, without a login."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from saas.media import links
from saas.media import service as media_service
from saas.media.storage import storage
from tenants import tenant_session
from tests.factories import app_context, make_workspace


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "tan").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def uploaded():
    """(tenant, media id, bytes) of a file in a workspace's library."""
    tenant, owner = make_workspace()
    data = jpeg()
    with app_context(), tenant_session(tenant.id) as session:
        item = media_service.upload(session, filename="rye.jpg", data=data, alt="A rye loaf", uploaded_by=owner.id)
        session.commit()
        stored = Path(storage().source(item.storage_key)).read_bytes()  # re-encoded on upload
        return tenant, item.id, stored


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_library_file_is_served_at_its_signed_address_without_a_login(app, client, uploaded):
    tenant, media_id, data = uploaded
    with app.app_context():
        url = links.public_url(tenant.id, media_id)
    assert url.startswith(app.config["PUBLIC_BASE_URL"] + "/m/")

    response = client.get(path_of(url))

    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data == data


def test_an_altered_or_foreign_address_finds_nothing(app, client, uploaded):
    tenant, media_id, _ = uploaded
    other, _owner = make_workspace()
    with app.app_context():
        url = links.public_url(tenant.id, media_id)
        # Even a correctly signed address that names another workspace does not reach this file.
        foreign = links.public_url(other.id, media_id)
    token = url.rsplit("/", 1)[1]

    assert (
        client.get(path_of(url).replace(token, token[:-2] + ("aa" if token[-2:] != "aa" else "bb"))).status_code == 404
    )
    assert client.get("/m/not-a-token").status_code == 404
    assert client.get(path_of(foreign)).status_code == 404


def test_an_expired_address_finds_nothing(app, client, uploaded):
    tenant, media_id, _ = uploaded
    with app.app_context():
        url = links.public_url(tenant.id, media_id)
    previous = app.config["MEDIA_LINK_SECONDS"]
    app.config["MEDIA_LINK_SECONDS"] = -1  # every address is older than this
    try:
        assert client.get(path_of(url)).status_code == 404
    finally:
        app.config["MEDIA_LINK_SECONDS"] = previous
