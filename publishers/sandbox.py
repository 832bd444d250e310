"""Sandbox: a small social network served by Multipost itself, for demos and tests.

THE SANDBOX PROTOCOL (the in-app server `saas/sandbox`, the test fake
`tests/fakes/network.py` and this adapter all follow it exactly):

Base URL: settings["base_url"], e.g. "http://127.0.0.1:5000/sandbox". Paths below are relative to it.
Auth: `Authorization: Bearer <access_token>` on every /api call.

GET  /api/v1/me
     200 {"id": "acct_…", "handle": "bluebell", "display_name": "Bluebell Bakery", "url": "<base>/@bluebell"}
POST /api/v1/posts      JSON {"text": "...", "media_urls": ["https://…", …]}
     optional header Idempotency-Key: <≤128 chars>
     201 {"id": "post_…", "url": "<base>/@handle/post_…", "text": "...", "created_at": "<ISO 8601 UTC>"}
     200 same body: a repeat of an Idempotency-Key this account used in the last hour returns the ORIGINAL
         post and creates nothing.
     422 {"error": "Text is longer than 500 characters"} / {"error": "Text can't be blank"} (blank text and no media)
GET  /api/v1/posts?since=<ISO 8601>&limit=<1..100, default 40>
     200 [post, …] this account's posts created at or after `since`, newest first (read-back)
GET  /api/v1/posts/<id>        200 post | 404 {"error": "Post not found"}
DELETE /api/v1/posts/<id>      200 post | 404
POST /oauth/token   form grant_type=refresh_token&refresh_token=<…>
     200 {"access_token", "refresh_token", "token_type": "Bearer", "expires_in": <seconds>}   (both tokens rotate)
     400 {"error": "invalid_grant"}

Errors on /api calls:
     401 {"error": "token_expired"} with `WWW-Authenticate: Bearer error="invalid_token", error_description="expired"`
     401 {"error": "token_revoked"} for an unknown or revoked token
     429 {"error": "Too many requests"} with X-RateLimit-Limit, X-RateLimit-Remaining: 0,
         X-RateLimit-Reset: <ISO 8601 UTC> and Retry-After: <seconds>; `X-RateLimit-Scope: app` when the whole
         application is limited rather than this account
     5xx {"error": "…"}
Every /api response carries X-RateLimit-Limit / -Remaining / -Reset.
Text is counted in characters (code points); the limit is 500. At most 4 media URLs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from publishers.base import Capabilities, Credentials, OutboundPost, Profile, Publisher, PublishResult
from publishers.capabilities import SANDBOX
from publishers.errors import AuthRevoked, InvalidPost, OutcomeUnknown, TransientError
from publishers.http import HttpClient, json_body, parse_time, timeout_from

MAX_IDEMPOTENCY_KEY_LENGTH = 128
READ_BACK_LIMIT = 100  # the most the protocol lists at once; it has no paging


class SandboxPublisher(Publisher):
    """The Sandbox network over HTTP. Thread-safe: one instance serves every channel.

    Settings: "base_url" (required) and "timeout_seconds" (optional, every phase of a request).
    """

    capabilities: ClassVar[Capabilities] = SANDBOX

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self._http = HttpClient(
            settings["base_url"], network=self.capabilities.display_name, timeout=timeout_from(settings)
        )

    def close(self) -> None:
        self._http.close()

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        """Create the post, once per key: a repeat of the key within the hour returns the original post.

        On `OutcomeUnknown` retry only with the same `idempotency_key`, and only inside
        the network's one-hour window; after that, read back with `find_published`.
        """
        response = self._http.request(
            "POST",
            "/api/v1/posts",
            token=credentials.access_token,
            mutation=True,
            headers={"Idempotency-Key": _header_safe_key(idempotency_key)},
            json={"text": post.text, "media_urls": list(post.media_urls)},
        )
        if response.status_code not in (200, 201):
            # Some other 2xx: the network took the request but we cannot tell what it made.
            raise OutcomeUnknown(
                f"Sandbox answered {response.status_code} to the post, so it may or may not have been published.",
                http_status=response.status_code,
            )
        result = _publish_result(json_body(response))
        if result is None:
            raise OutcomeUnknown(
                "Sandbox accepted the post but its answer did not say which post it made.",
                http_status=response.status_code,
            )
        return result

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """Our post if the account has one with exactly this text made at or after `since`; the newest if several.

        Read-only. Looks at the newest 100 posts since `since` (the protocol cannot page further).
        """
        response = self._http.request(
            "GET",
            "/api/v1/posts",
            token=credentials.access_token,
            params={"since": _iso(since), "limit": str(READ_BACK_LIMIT)},
        )
        listed = json_body(response)
        if not isinstance(listed, list):
            raise TransientError("Sandbox answered the read-back with something other than a list of posts.")
        matches = [
            result
            for item in listed
            if isinstance(item, dict) and item.get("text") == post.text
            for result in [_publish_result(item)]
            if result is not None
        ]
        # The network lists newest first; sort anyway so "newest" never depends on that.
        aware_min = datetime.min.replace(tzinfo=UTC)
        matches.sort(key=lambda result: result.published_at or aware_min, reverse=True)
        return matches[0] if matches else None

    def profile(self, credentials: Credentials) -> Profile:
        response = self._http.request("GET", "/api/v1/me", token=credentials.access_token)
        body = json_body(response)
        if not isinstance(body, dict) or not body.get("id") or not body.get("handle"):
            raise TransientError("Sandbox answered with an account we could not read.")
        return Profile(
            remote_id=str(body["id"]),
            handle=str(body["handle"]),
            display_name=str(body.get("display_name") or body["handle"]),
            url=str(body["url"]) if body.get("url") else None,
        )

    def refresh(self, credentials: Credentials) -> Credentials:
        """New access and refresh tokens; both old ones stop working, so store the result before anything else.

        A refused refresh token (400 invalid_grant) means the channel must be reconnected: `AuthRevoked`.
        """
        if not credentials.refresh_token:
            raise AuthRevoked("This Sandbox connection has no refresh token. Reconnect the channel.")
        requested_at = datetime.now(UTC)  # expiry counts from before the request: errs on the early side
        try:
            response = self._http.request(
                "POST",
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": credentials.refresh_token},
            )
        except InvalidPost as exc:  # HttpClient sorts every other 4xx as a refused post
            raise AuthRevoked(
                "Sandbox no longer accepts this connection's refresh token. Reconnect the channel.",
                http_status=exc.http_status,
            ) from None
        body = json_body(response)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            # The old tokens may already be retired, so there is nothing safe to retry with.
            raise AuthRevoked("Sandbox answered the token refresh unreadably. Reconnect the channel.")
        expires_in = body.get("expires_in")
        return Credentials(
            access_token=body["access_token"],
            refresh_token=str(body.get("refresh_token") or credentials.refresh_token),
            expires_at=requested_at + timedelta(seconds=expires_in) if isinstance(expires_in, int | float) else None,
            extra=credentials.extra,
        )

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        """Delete one of the account's posts. A post that is already gone (404) counts as deleted."""
        try:
            self._http.request("DELETE", f"/api/v1/posts/{quote(remote_id, safe='')}", token=credentials.access_token)
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise


def _header_safe_key(key: str) -> str:
    """The key as sent: itself when it fits the protocol (≤128 printable ASCII), else its SHA-256.

    Hashing is deterministic, so every retry of one post still sends the same key.
    """
    if len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and key.isascii() and key.isprintable():
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z (a naive time is taken as UTC); no "+" to be mangled in a query string."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _publish_result(item: Any) -> PublishResult | None:
    """A post as the network describes it, or None when it names no id."""
    if not isinstance(item, dict) or not item.get("id"):
        return None
    return PublishResult(
        remote_id=str(item["id"]),
        url=str(item["url"]) if item.get("url") else None,
        published_at=parse_time(item.get("created_at")),
    )
