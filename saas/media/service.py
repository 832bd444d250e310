"""Upload checks (type, size, dimensions with Pillow), the library listing, alt text."""

from __future__ import annotations

import io

import sqlalchemy as sa
import sqlalchemy.orm as so
from PIL import Image, UnidentifiedImageError

from saas.media.models import MediaItem
from saas.media.storage import storage

# Pillow's name for the format → our MIME type and file extension.
IMAGE_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_VIDEO_BYTES = 300 * 1000 * 1000
MAX_UPLOAD_BYTES = MAX_VIDEO_BYTES + 1_000_000  # one request: the largest video plus the form around it
MIN_SIDE, MAX_SIDE = 32, 8192
MAX_ALT = 1500


class MediaError(ValueError):
    """An upload we refuse; the message says why, in words for the user."""


def _image(data: bytes, filename: str) -> tuple[str, str, int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # a truncated or corrupt file fails here, not at publish time
            fmt, (width, height) = image.format or "", image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise MediaError(f"{filename} is not a JPEG, PNG, GIF, WebP or MP4 file we can read.") from None
    if fmt not in IMAGE_FORMATS:
        raise MediaError(f"{filename} is a {fmt} image; upload JPEG, PNG, GIF or WebP.")
    if len(data) > MAX_IMAGE_BYTES:
        raise MediaError(
            f"{filename} is {len(data) / 1e6:.1f} MB; images can be at most {MAX_IMAGE_BYTES // 2**20} MB."
        )
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise MediaError(
            f"{filename} is {width}×{height} pixels; images must be {MIN_SIDE} to {MAX_SIDE} pixels on each side."
        )
    mime, extension = IMAGE_FORMATS[fmt]
    return mime, extension, width, height


def _is_mp4(data: bytes) -> bool:
    # ISO base media: a box size, then "ftyp" (MP4, M4V, MOV's cousin).
    return len(data) > 12 and data[4:8] == b"ftyp"


def upload(session: so.Session, *, filename: str, data: bytes, alt: str, uploaded_by: int | None) -> MediaItem:
    """Check and store one file; nothing is stored when it is refused."""
    filename = (filename or "upload").rsplit("/", 1)[-1][:255]
    if not data:
        raise MediaError(f"{filename} is empty.")
    if len(alt) > MAX_ALT:
        raise MediaError(f"Keep the alt text to {MAX_ALT} characters.")
    width = height = None
    if _is_mp4(data):
        if len(data) > MAX_VIDEO_BYTES:
            raise MediaError(f"{filename} is {len(data) / 1e6:.0f} MB; videos can be at most 300 MB.")
        mime, extension = "video/mp4", "mp4"
    else:
        mime, extension, width, height = _image(data, filename)
    key = storage().save(session.info["tenant_id"], data, extension)
    item = MediaItem(
        filename=filename,
        storage_key=key,
        mime_type=mime,
        size_bytes=len(data),
        width=width,
        height=height,
        alt=alt.strip(),
        uploaded_by=uploaded_by,
    )
    session.add(item)
    session.flush()
    return item


def library(session: so.Session, limit: int = 200) -> list[MediaItem]:
    return list(
        session.scalars(sa.select(MediaItem).order_by(MediaItem.created_at.desc(), MediaItem.id.desc()).limit(limit))
    )


def get(session: so.Session, media_id: int) -> MediaItem | None:
    return session.scalar(sa.select(MediaItem).where(MediaItem.id == media_id))


def by_ids(session: so.Session, ids: list[int]) -> list[MediaItem]:
    """The workspace's items with these ids, in the order given; an id of another workspace is not found."""
    if not ids:
        return []
    found = {m.id: m for m in session.scalars(sa.select(MediaItem).where(MediaItem.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def set_alt(session: so.Session, media_id: int, alt: str) -> MediaItem | None:
    item = get(session, media_id)
    if item is None:
        return None
    if len(alt) > MAX_ALT:
        raise MediaError(f"Keep the alt text to {MAX_ALT} characters.")
    item.alt = alt.strip()
    return item


def attachment(item: MediaItem) -> dict[str, str]:
    """How a post carries it (saas.posts.outbound reads `source`); alt text is copied so later edits need a re-save."""
    return {
        "media_id": str(item.id),
        "source": storage().source(item.storage_key),
        "mime_type": item.mime_type,
        "alt": item.alt,
    }
