"""Upload checks (type sniffed from the bytes, size, dimensions, re-encoding with Pillow), the library, alt text."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from PIL import Image, ImageOps, UnidentifiedImageError

from saas.media.models import MediaItem
from saas.media.storage import storage

# Pillow's name for the format → our MIME type and file extension.
IMAGE_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
FORMATS = tuple(IMAGE_FORMATS)
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_VIDEO_BYTES = 300 * 1000 * 1000
MAX_UPLOAD_BYTES = MAX_VIDEO_BYTES + 1_000_000  # one request: the largest video plus the form around it
MIN_SIDE, MAX_SIDE = 32, 8192
MAX_ALT = 1500


# Decompression bombs: a small file that decodes to gigabytes. Size is checked from the header, before any
# pixel is decoded; Pillow's own bomb check (which warns at MAX_IMAGE_PIXELS) is made an error too.
MAX_PIXELS = 40_000_000  # a 8000×5000 photo
MAX_ANIMATION_PIXELS = 200_000_000  # all frames of an animated GIF or WebP together
MAX_FRAMES = 1000
JPEG_QUALITY = 90


class MediaError(ValueError):
    """An upload we refuse; the message says why, in words for the user."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes  # re-encoded by us: no metadata, orientation applied, nothing after the image
    mime_type: str
    extension: str
    width: int
    height: int


def check_image(data: bytes, label: str) -> CheckedImage:
    """What the bytes are (never the name or the type the client claimed), within limits, re-encoded.

    Re-encoding drops what rides along in a file (EXIF location, comments, a script appended to make a
    polyglot) and what a crafted file might do to a viewer's decoder; only pixels we decoded are stored.
    """
    unreadable = f"{label} is not a JPEG, PNG, GIF, WebP or MP4 file we can read."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only our formats' decoders ever see the bytes (never EPS, which runs Ghostscript, nor PSD or TIFF).
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:  # reads the header only
                fmt, (width, height) = image.format or "", image.size
                frames = getattr(image, "n_frames", 1)
                _check_dimensions(label, fmt, width, height, frames)
                image.verify()  # a truncated or corrupt file fails here, not at publish time
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                encoded = _reencode(image, fmt, frames)
    except MediaError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise MediaError(f"{label} has too many pixels to open safely (a decompression bomb?).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        other = _other_image_format(data)
        raise MediaError(
            f"{label} is in {other} format; upload JPEG, PNG, GIF or WebP." if other else unreadable
        ) from None
    if len(encoded) > MAX_IMAGE_BYTES:
        raise MediaError(
            f"{label} is {len(encoded) / 1e6:.1f} MB; images can be at most {MAX_IMAGE_BYTES // 2**20} MB."
        )
    mime, extension = IMAGE_FORMATS[fmt]
    return CheckedImage(encoded, mime, extension, width, height)


# Image formats we never decode, recognised by their first bytes only to say what the file is.
OTHER_IMAGE_SIGNATURES = ((b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"8BPS", "PSD"),
                          (b"\x00\x00\x01\x00", "ICO"), (b"%!PS", "EPS"))  # fmt: skip


def _other_image_format(data: bytes) -> str | None:
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "HEIC"
    if data.lstrip()[:5].lower() in (b"<svg ", b"<?xml") and b"<svg" in data[:1024].lower():
        return "SVG"
    return next((name for signature, name in OTHER_IMAGE_SIGNATURES if data.startswith(signature)), None)


def _check_dimensions(label: str, fmt: str, width: int, height: int, frames: int) -> None:
    if fmt not in IMAGE_FORMATS:
        raise MediaError(f"{label} is in {fmt} format; upload JPEG, PNG, GIF or WebP.")
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise MediaError(
            f"{label} is {width}×{height} pixels; images must be {MIN_SIDE} to {MAX_SIDE} pixels on each side."
        )
    if width * height > MAX_PIXELS:
        raise MediaError(f"{label} is {width}×{height} pixels; images can have at most {MAX_PIXELS // 10**6} million.")
    if frames > MAX_FRAMES or width * height * frames > MAX_ANIMATION_PIXELS:
        raise MediaError(f"{label} has {frames} frames of {width}×{height} pixels; that is too much animation.")


def _reencode(image: Image.Image, fmt: str, frames: int) -> bytes:
    out = io.BytesIO()
    if frames > 1:  # animated GIF or WebP: every frame re-encoded, timing kept
        image.save(out, format=fmt, save_all=True, duration=image.info.get("duration"), loop=image.info.get("loop", 0))
        return out.getvalue()
    upright = ImageOps.exif_transpose(image)  # the EXIF orientation applied, since EXIF itself is dropped
    options: dict[str, Any] = {"icc_profile": image.info["icc_profile"]} if image.info.get("icc_profile") else {}
    if fmt == "JPEG":
        options |= {"quality": JPEG_QUALITY}
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
    if fmt == "WEBP":
        options |= {"quality": JPEG_QUALITY}
    upright.save(out, format=fmt, **options)
    return out.getvalue()


def _is_mp4(data: bytes) -> bool:
    # ISO base media: a box size, then "ftyp" (MP4, M4V, MOV's cousin).
    return len(data) > 12 and data[4:8] == b"ftyp"


def display_name(filename: str | None) -> str:
    """The uploader's file name as a label for people; never used as a path (storage keys are ours)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:255] or "upload"


def upload(session: so.Session, *, filename: str, data: bytes, alt: str, uploaded_by: int | None) -> MediaItem:
    """Check and store one file; nothing is stored when it is refused. The client's type and name are ignored."""
    filename = display_name(filename)
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
        image = check_image(data, filename)
        data, mime, extension, width, height = image.data, image.mime_type, image.extension, image.width, image.height
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
