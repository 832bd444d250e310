"""Standard Webhooks signatures (https://www.standardwebhooks.com): how we sign and how a receiver verifies.

Each request carries `webhook-id` (the message id, the same on every retry and replay), `webhook-timestamp`
(Unix seconds of this attempt) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` of
`"<id>.<timestamp>.<body>"`, keyed with the base64-decoded part of the `whsec_…` secret. Two signatures
are sent while a rotated-out secret is still honoured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterable, Mapping

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """The request is not signed by the secret, or is too old (a replay) or from the future."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers for one attempt, signed with every secret given (newest first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }


def verify(secret: str, request_headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """What a receiver does (and what the README shows): SignatureError unless one signature matches in time."""
    lowered = {k.lower(): v for k, v in request_headers.items()}
    message_id, stamp = lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit():
        raise SignatureError("missing webhook-id or webhook-timestamp")
    if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureError("timestamp outside the tolerance: too old or from the future")
    expected = signature(secret, message_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, given) for given in lowered.get("webhook-signature", "").split()):
        raise SignatureError("no matching signature")
