"""The media library: checked uploads, alt text, reuse in posts, per-channel media, and what adapters receive."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from saas.media.models import MediaItem
from saas.posts.models import Post, PostTarget
from saas.posts.outbound import outbound_post
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def studio(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    main = pipeline.connect(tenant, "bluebell")
    second = pipeline.connect(tenant, "bluebellcafe")
    client.log_in(owner.email, PASSWORD)
    return tenant, main, second


def upload(client, tenant, files, alt=""):
    page = f"/w/{tenant.slug}/media"
    data = {"files": [(io.BytesIO(body), name) for name, body in files], "alt": alt}
    return client.submit(page, data, page=page, content_type="multipart/form-data", follow_redirects=True)


def _items(tenant):
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(MediaItem).order_by(MediaItem.id)))


@pytest.mark.parametrize(
    ("name", "body", "mime", "dimensions"),
    [
        ("loaf.png", image_bytes("PNG"), "image/png", (64, 48)),
        ("loaf.jpg", image_bytes("JPEG"), "image/jpeg", (64, 48)),
        ("loaf.gif", image_bytes("GIF"), "image/gif", (64, 48)),
        ("loaf.webp", image_bytes("WEBP"), "image/webp", (64, 48)),
        ("tour.mp4", MP4, "video/mp4", (None, None)),
    ],
)
def test_upload_accepts_the_supported_types_and_records_what_they_are(
    app, client, studio, name, body, mime, dimensions
):
    tenant, _, _ = studio
    page = upload(client, tenant, [(name, body)], alt="A golden loaf").get_data(as_text=True)
    assert f"Uploaded {name}." in page
    [item] = _items(tenant)
    assert (item.mime_type, (item.width, item.height), item.alt) == (mime, dimensions, "A golden loaf")
    stored = Path(app.config["VAR_DIR"]) / "media" / item.storage_key  # under var/media/, named by us
    assert item.size_bytes == stored.stat().st_size
    if mime.startswith("image/"):  # images are re-encoded: the same picture, nothing riding along
        assert Image.open(stored).size == dimensions
    else:
        assert stored.read_bytes() == body
    assert name not in item.storage_key
    assert client.get(f"/w/{tenant.slug}/media/{item.id}/file").data == stored.read_bytes()


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("notes.txt", b"just some text", "notes.txt is not a JPEG, PNG, GIF, WebP or MP4 file we can read."),
        ("tiny.png", image_bytes("PNG", (8, 8)), "tiny.png is 8×8 pixels; images must be 32 to 8192 pixels"),
        ("cut.png", image_bytes("PNG")[:40], "cut.png is not a JPEG, PNG, GIF, WebP or MP4 file we can read."),
        ("scan.bmp", image_bytes("BMP"), "scan.bmp is in BMP format; upload JPEG, PNG, GIF or WebP."),
    ],
)
def test_upload_refuses_what_it_cannot_use_and_says_why(client, studio, name, body, message):
    tenant, _, _ = studio
    page = upload(client, tenant, [(name, body)]).get_data(as_text=True)
    assert message in page
    assert _items(tenant) == []


def test_one_bad_file_does_not_stop_the_good_ones(client, studio):
    tenant, _, _ = studio
    page = upload(client, tenant, [("ok.png", image_bytes()), ("bad.txt", b"nope")]).get_data(as_text=True)
    assert "Uploaded ok.png." in page and "bad.txt is not a JPEG" in page
    assert [i.filename for i in _items(tenant)] == ["ok.png"]


def test_alt_text_can_be_changed(client, studio):
    tenant, _, _ = studio
    upload(client, tenant, [("loaf.png", image_bytes())])
    [item] = _items(tenant)
    client.submit(
        f"/w/{tenant.slug}/media/{item.id}/alt", {"alt": "Sourdough on a board"}, page=f"/w/{tenant.slug}/media"
    )
    assert _items(tenant)[0].alt == "Sourdough on a board"


def test_media_is_reused_in_posts_with_a_channel_of_its_own(client, studio):
    tenant, main, second = studio
    upload(client, tenant, [("loaf.png", image_bytes())], alt="A loaf")
    upload(client, tenant, [("cafe.jpg", image_bytes("JPEG"))], alt="The café")
    loaf, cafe = _items(tenant)
    page = f"/w/{tenant.slug}/posts/new"
    response = client.submit(
        page,
        {
            "text": "Bread and coffee",
            "channels": [str(main.id), str(second.id)],
            "publish_now": "y",
            "media": str(loaf.id),
            f"own-media-{second.id}": "y",
            f"media-{second.id}": [str(cafe.id), str(loaf.id)],
        },
        page=page,
    )
    assert response.status_code == 302
    with app_context(), tenant_session(tenant.id) as session:
        targets = list(session.scalars(sa.select(PostTarget).order_by(PostTarget.channel_id)))
        sent = {t.channel_id: outbound_post(t) for t in targets}
    assert [(Path(m.source).exists(), m.mime_type, m.alt) for m in sent[main.id].media] == [
        (True, "image/png", "A loaf")
    ]
    assert [m.alt for m in sent[second.id].media] == ["The café", "A loaf"]


def test_too_many_images_for_a_network_is_refused_naming_the_channel(client, studio):
    tenant, main, _ = studio
    for n in range(5):
        upload(client, tenant, [(f"p{n}.png", image_bytes())])
    ids = [str(i.id) for i in _items(tenant)]
    page = f"/w/{tenant.slug}/posts/new"
    response = client.submit(
        page, {"text": "Five", "channels": str(main.id), "publish_now": "y", "media": ids}, page=page
    )
    assert response.status_code == 422
    assert "For @bluebell: Sandbox allows at most 4 images." in response.get_data(as_text=True)
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 0


def test_another_workspaces_media_is_not_found(client, studio, make_client, pipeline):
    tenant, main, _ = studio
    upload(client, tenant, [("secret.png", image_bytes())])
    [item] = _items(tenant)
    other, intruder = make_workspace()
    pipeline.connect(other, "intruder")
    stranger = make_client()
    stranger.log_in(intruder.email, PASSWORD)
    assert stranger.get(f"/w/{other.slug}/media/{item.id}/file").status_code == 404
    page = f"/w/{other.slug}/posts/new"
    response = stranger.submit(page, {"text": "x", "channels": "", "media": str(item.id), "action": "draft"}, page=page)
    assert response.status_code == 422
    assert "no longer in the library" in response.get_data(as_text=True)
