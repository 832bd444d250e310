"""Uploads are judged by their bytes, never by their name or claimed type; images are re-encoded and capped."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from saas.media import service as media_service
from saas.media.models import MediaItem
from saas.media.storage import storage
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG of a few hundred bytes whose header says 3.6 billion pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def image(fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "tan").save(out, format=fmt, **save)
    return out.getvalue()


SCRIPT = b"<script>alert(document.cookie)</script>"


@pytest.fixture
def workspace(client):
    tenant, owner = make_workspace(name="Upload Bakery")
    client.log_in(owner.email, PASSWORD)
    return tenant


def upload(client, tenant, name: str, data: bytes, content_type: str):
    page = f"/w/{tenant.slug}/media"
    token = client.csrf_token(page)
    return client.post(
        page,
        data={"csrf_token": token, "files": (io.BytesIO(data), name, content_type)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def stored(tenant) -> list[tuple[MediaItem, bytes]]:
    with app_context(), tenant_session(tenant.id) as session:
        items = list(session.scalars(sa.select(MediaItem).order_by(MediaItem.id)))
        return [(item, Path(storage().source(item.storage_key)).read_bytes()) for item in items]


def test_a_decompression_bomb_is_refused_before_it_is_decoded(client, workspace):
    bomb = png_bomb()
    assert len(bomb) < 1000

    page = upload(client, workspace, "tiny.png", bomb, "image/png").get_data(as_text=True)

    assert "tiny.png" in page and "too many pixels" in page
    assert stored(workspace) == []


def test_an_image_with_too_many_pixels_within_the_side_limit_is_refused(app):
    with pytest.raises(media_service.MediaError, match="at most 40 million"):
        media_service.check_image(png_bomb(8000, 8000), "wide.png")


def test_a_script_named_png_with_an_image_type_is_refused(client, workspace):
    page = upload(client, workspace, "cat.png", b"<!doctype html><html>" + SCRIPT, "image/png").get_data(as_text=True)

    assert "cat.png is not a JPEG, PNG, GIF, WebP or MP4 file we can read." in page
    assert SCRIPT.decode() not in page  # nor is the file echoed back
    assert stored(workspace) == []


def test_svg_is_refused(client, workspace):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><script>alert(1)</script></svg>'
    page = upload(client, workspace, "logo.svg", svg, "image/svg+xml").get_data(as_text=True)
    assert "logo.svg is in SVG format; upload JPEG, PNG, GIF or WebP." in page
    assert stored(workspace) == []


def test_a_polyglot_is_stored_as_only_its_image(client, workspace):
    polyglot = image("GIF") + SCRIPT  # a valid GIF with a script riding after its end

    upload(client, workspace, "funny.gif", polyglot, "text/html")

    [(item, data)] = stored(workspace)
    assert item.mime_type == "image/gif"  # from the bytes, not the claimed text/html
    assert SCRIPT not in data
    with Image.open(io.BytesIO(data)) as again:
        assert again.format == "GIF" and again.size == (64, 48)
    served = client.get(f"/w/{workspace.slug}/media/{item.id}/file")
    assert served.mimetype == "image/gif"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]


def test_metadata_is_dropped_and_orientation_applied(app):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif[0x010E] = "home address: 1 Secret Lane"  # ImageDescription
    photo = image("JPEG", (80, 40), exif=exif.tobytes())

    checked = media_service.check_image(photo, "photo.jpg")

    assert (checked.width, checked.height) == (80, 40)  # the header's size, as uploaded
    with Image.open(io.BytesIO(checked.data)) as again:
        assert again.size == (40, 80)  # stored upright
        assert not again.getexif()
    assert b"Secret Lane" not in checked.data


def test_the_file_name_is_a_label_and_never_a_path(client, workspace):
    upload(client, workspace, "..\\..\\etc/<img src=x onerror=alert(1)>.png", image(), "image/png")

    [(item, _data)] = stored(workspace)
    assert item.filename == "<img src=x onerror=alert(1)>.png"
    assert "etc" not in item.storage_key and ".." not in item.storage_key and "img" not in item.storage_key
    assert item.storage_key.startswith(f"{workspace.id}/") and item.storage_key.endswith(".png")
    page = client.get(f"/w/{workspace.slug}/media").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in page and "<img src=x" not in page


def test_the_type_comes_from_the_bytes_not_the_extension(client, workspace):
    upload(client, workspace, "really-a-jpeg.png", image("JPEG"), "image/png")
    [(item, data)] = stored(workspace)
    assert (item.mime_type, item.storage_key.rsplit(".", 1)[1]) == ("image/jpeg", "jpg")
    assert data.startswith(b"\xff\xd8")


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "EPS"])
def test_formats_we_do_not_take_are_never_decoded(app, fmt):
    data = image(fmt) if fmt != "EPS" else b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\n"
    with pytest.raises(media_service.MediaError, match=f"is in {fmt} format; upload JPEG, PNG, GIF or WebP"):
        media_service.check_image(data, f"file.{fmt.lower()}")
