"""Signed, expiring addresses of library files, for networks that download media themselves (Meta).

The address names the tenant and the media item, signed with the app's secret key, so it cannot be
altered to reach another file or workspace, and it works without a login (the network has none).
It expires after MEDIA_LINK_SECONDS: long enough for a post's retries, not a permanent public copy.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

SALT = "multipost.media-link"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def public_url(tenant_id: int, media_id: int) -> str:
    token = _serializer().dumps([tenant_id, media_id])
    return f"{current_app.config['PUBLIC_BASE_URL']}/m/{token}"


def read(token: str) -> tuple[int, int] | None:
    """(tenant_id, media_id) of a valid, unexpired link; None for anything else."""
    try:
        tenant_id, media_id = _serializer().loads(token, max_age=current_app.config["MEDIA_LINK_SECONDS"])
        return int(tenant_id), int(media_id)
    except (BadData, TypeError, ValueError):
        return None
