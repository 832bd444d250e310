"""OAuth helpers every authorization-code connect flow shares: `state` and PKCE (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


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
