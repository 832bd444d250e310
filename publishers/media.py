"""Reading an attachment's bytes before uploading it to a network.

A `Media.source` is an http(s) URL (fetched with the adapter's own client, size
capped while reading) or a local file path (what the fakes and dev setups use).
Reading creates nothing on any network, so every failure here is safe to retry
except a file that is gone or too large.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from publishers.base import Media
from publishers.errors import InvalidPost
from publishers.http import HttpClient


@dataclass(frozen=True)
class LoadedMedia:
    data: bytes
    mime_type: str
    filename: str
    alt: str


def load(media: Media, http: HttpClient, *, max_bytes: int) -> LoadedMedia:
    """The attachment's bytes and MIME type, or `InvalidPost` when it is missing, too large or untyped."""
    url = urlsplit(media.source)
    filename = Path(unquote(url.path)).name or "upload"
    if url.scheme in ("http", "https"):
        data, served_type = http.download(media.source, max_bytes=max_bytes)
    else:
        path = Path(unquote(url.path) if url.scheme == "file" else media.source)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise InvalidPost(f"{filename} is larger than {http.network} accepts ({max_bytes:,} bytes).")
            data = path.read_bytes()
        except OSError:
            raise InvalidPost(f"The attached file {filename} cannot be read.") from None
        served_type = ""
    mime_type = media.mime_type or served_type or (mimetypes.guess_type(filename)[0] or "")
    if not mime_type or mime_type == "application/octet-stream":
        raise InvalidPost(f"{filename} has no recognisable image or video type.")
    return LoadedMedia(data=data, mime_type=mime_type, filename=filename, alt=media.alt)
