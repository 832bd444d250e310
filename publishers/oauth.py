"""OAuth helpers every authorization-code connect flow shares: `state` and PKCE (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from publishers.base import Credentials
from publishers.errors import ConnectFailed


@dataclass(frozen=True)
class Pkce:
    verifier: str  # kept by us (the session) until the callback; never sent to the browser
    challenge: str  # sent in the authorization URL


def new_state() -> str:
    """An unguessable value tying the callback to the browser session that started the flow."""
    return secrets.token_urlsafe(32)


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(64)  # 86 characters: within RFC 7636's 43..128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return Pkce(verifier=verifier, challenge=base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="))


def expiry(expires_in: object, now: datetime | None = None) -> datetime | None:
    """When a token answered with `expires_in` seconds lapses (None: the network gave no lifetime)."""
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        return None
    return (now or datetime.now(UTC)) + timedelta(seconds=float(expires_in))


def token_credentials(
    body: object, *, network: str, extra: Mapping[str, str] | None = None, keep_refresh: str | None = None
) -> Credentials:
    """Credentials from an OAuth token answer. A refresh that names no new refresh token keeps `keep_refresh`."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ConnectFailed(f"{network} answered the sign-in unreadably.")
    refresh = body.get("refresh_token")
    return Credentials(
        access_token=body["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else keep_refresh,
        expires_at=expiry(body.get("expires_in")),
        extra=dict(extra or {}),
    )


def expires_soon(credentials: Credentials, margin: timedelta) -> bool:
    """True when the access token lapses within `margin`: refresh before sending, not after a refusal."""
    return credentials.expires_at is not None and credentials.expires_at - datetime.now(UTC) < margin


def client_fields(settings: Mapping[str, str]) -> dict[str, str]:
    """Our app's `client_id` and `client_secret`, as token endpoints take them in the form."""
    return {"client_id": settings.get("client_id") or "", "client_secret": settings.get("client_secret") or ""}
