"""Bluesky (AT Protocol) over plain XRPC, per networks.md §2.

Connect: `create_session(pds_url, handle or DID, app password)` ONCE, when the
channel is connected. The PDS caps logins (30 per 5 min, 300 a day; a locked
account waits a day), so this adapter never logs in again by itself: it keeps
the session alive with `refresh` (the refresh token rotates, so the caller
persists every result at once) and asks for a refresh before sending anything
with an access token that expires within `refresh_margin_seconds`. An
`ExpiredToken` / `InvalidToken` error arrives as HTTP 400, not 401, and is
sorted as `AuthExpired` all the same. The credentials carry the account's DID,
handle and PDS URL in `extra`, so one adapter serves every PDS and thread.

Idempotency (no key exists): each part n of a post gets a record key derived
only from the target's idempotency key (`record_key(key, n)`). The pipeline
stores that key on the target before the first attempt, so every part's rkey
is chosen and stored before `createRecord` is ever called. Every `publish`
first `getRecord`s each part's rkey and skips the parts that exist, and a
record key can hold one record only, so a lost response, a retry or a resumed
thread can never create a second copy of any part. The keys are TID-shaped, as
the post lexicon requires (13 characters, base32-sortable), with the
"timestamp" bits taken from a hash inside 2024; whether the AppView minds
such timestamps is unverified (the PDS checks the syntax only).

Text: facets (links, mentions resolved to DIDs with `resolveHandle`,
hashtags) in UTF-8 byte offsets (`publishers.richtext`); 300 graphemes.
Images: up to 4, each checked against the 2,000,000-byte blob limit before
`uploadBlob`, with alt text. A post without images but with a URL gets a link
card (`app.bsky.embed.external`) whose title is the URL and description empty:
fetching the page's own title would mean fetching arbitrary URLs from the
worker, which this version does not do. Video is not supported yet.
Threads: each part replies to the one before (`reply.parent`) under the first
(`reply.root`). `PublishResult.remote_id` is the first part's at:// URI.

Settings: "pds_url" (default https://bsky.social, for credentials that name
none), "app_url" (where post pages live, default https://bsky.app),
"refresh_margin_seconds", "allow_http" ("1": local fakes), "timeout_seconds".
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from publishers import media as media_files
from publishers import richtext
from publishers.base import Capabilities, Credentials, OutboundPost, Profile, Publisher, PublishResult, ThreadPart
from publishers.capabilities import BLUESKY
from publishers.errors import AuthExpired, AuthRevoked, ConnectFailed, InvalidPost, PublisherError, TransientError
from publishers.http import HttpClient, json_body, parse_time, timeout_from

DEFAULT_PDS = "https://bsky.social"
DEFAULT_APP = "https://bsky.app"
POST_COLLECTION = "app.bsky.feed.post"
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)

_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_TID_BASE_MICROS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_TID_SPAN_MICROS = 365 * 24 * 3600 * 1_000_000


class RecordNotFound(InvalidPost):
    """getRecord found nothing at that key (400 RecordNotFound): safe to create it."""


@dataclass(frozen=True)
class StrongRef:
    uri: str
    cid: str
    created_at: datetime | None = None

    def as_json(self) -> dict[str, str]:
        return {"uri": self.uri, "cid": self.cid}


def record_key(idempotency_key: str, part: int) -> str:
    """The rkey of part `part` of the post whose target carries `idempotency_key`: deterministic, TID-shaped."""
    digest = int.from_bytes(hashlib.sha256(f"{idempotency_key}:{part}".encode()).digest()[:8], "big")
    micros = _TID_BASE_MICROS + (digest >> 10) % _TID_SPAN_MICROS
    value = (micros << 10) | (digest & 0x3FF)  # 53 bits of time, 10 of clock id; the top bit stays 0
    return "".join(_S32[(value >> (5 * shift)) & 31] for shift in range(12, -1, -1))


def token_expiry(jwt: str) -> datetime | None:
    """The `exp` of a JWT, read without verifying it (only the PDS can, and it will)."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _classify(response: httpx.Response, reason: str, mutation: bool) -> PublisherError | None:
    """XRPC errors whose HTTP status alone would be sorted wrongly."""
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if status == 400 and error in ("ExpiredToken", "InvalidToken"):
        return AuthExpired(f"The Bluesky session expired ({reason}).", http_status=status)
    if status == 400 and error == "RecordNotFound":
        return RecordNotFound("Bluesky has no such record.", http_status=status)
    if status == 401:
        return AuthRevoked(f"Bluesky no longer accepts this connection ({reason}). Reconnect the channel.")
    return None


class BlueskyPublisher(Publisher):
    """Bluesky over XRPC. Thread-safe: one instance serves every channel on every PDS."""

    capabilities: ClassVar[Capabilities] = BLUESKY

    def __init__(self, settings: Mapping[str, str], *, transport: httpx.BaseTransport | None = None) -> None:
        # `transport`: the app passes one that checks each server's address (a PDS is named by its user).
        super().__init__(settings)
        self._http = HttpClient(
            network=self.capabilities.display_name,
            timeout=timeout_from(settings),
            classify=_classify,
            transport=transport,
        )
        self.allow_http = settings.get("allow_http") == "1"  # a PDS on plain http: local fakes only
        margin = settings.get("refresh_margin_seconds")
        self._refresh_margin = timedelta(seconds=float(margin)) if margin else DEFAULT_REFRESH_MARGIN

    def close(self) -> None:
        self._http.close()

    def validate(self, post: OutboundPost, limits: Mapping[str, int] | None = None) -> list[str]:
        problems = super().validate(post, limits)
        if any(item.is_video for part in post.parts for item in part.media):
            problems.append("Bluesky video is not supported yet: attach images.")
        return problems

    # -- session ---------------------------------------------------------------------------------------------------

    def create_session(self, pds_url: str, identifier: str, app_password: str) -> tuple[Profile, Credentials]:
        """Log in once, at connect time. A refused login is `ConnectFailed`; nothing is retried."""
        pds_url = pds_url.rstrip("/") or DEFAULT_PDS
        try:
            response = self._http.request(
                "POST",
                f"{pds_url}/xrpc/com.atproto.server.createSession",
                json={"identifier": identifier.strip().lstrip("@"), "password": app_password.strip()},
            )
        except (InvalidPost, AuthRevoked, AuthExpired) as exc:
            raise ConnectFailed(
                "Bluesky did not accept that handle and app password. Check both, and that it is an app "
                "password (Settings → Privacy and security → App passwords), not your main password.",
                http_status=exc.http_status,
            ) from None
        credentials = self._session_credentials(_json_object(response), pds_url)
        return self.profile(credentials), credentials

    def refresh(self, credentials: Credentials) -> Credentials:
        """A new session from the refresh token. Both tokens rotate: store the result before anything else.

        A refused refresh token means the app password was revoked or the session ended: `AuthRevoked`.
        """
        if not credentials.refresh_token:
            raise AuthRevoked("This Bluesky connection has no refresh token. Reconnect the channel.")
        try:
            response = self._http.request(
                "POST",
                f"{_pds(credentials)}/xrpc/com.atproto.server.refreshSession",
                token=credentials.refresh_token,
            )
        except (InvalidPost, AuthExpired, AuthRevoked) as exc:
            raise AuthRevoked(
                "Bluesky no longer accepts this connection's session. Reconnect the channel with an app password.",
                http_status=exc.http_status,
            ) from None
        return self._session_credentials(_json_object(response), _pds(credentials))

    def profile(self, credentials: Credentials) -> Profile:
        handle = credentials.extra.get("handle") or ""
        did = credentials.extra.get("did") or ""
        return Profile(remote_id=did, handle=handle, display_name=handle, url=f"{self._app_url}/profile/{handle}")

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        """Create each part that does not exist yet, at its own record key; the result names the first part.

        Safe to call again after any failure with the same key: existing parts are found
        with `getRecord` and skipped, and a record key can never hold a second record.
        """
        self._require_fresh(credentials)
        refs: list[StrongRef] = []
        for number, part in enumerate(post.parts):
            rkey = record_key(idempotency_key, number)
            ref = self._get_record(credentials, rkey)
            if ref is None:
                record = self._record(credentials, post, part, refs)
                ref = self._create_record(credentials, rkey, record)
            refs.append(ref)
        return self._result(credentials, refs[0])

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """The post if EVERY part exists at its record key, else None. Read-only; `since` is not needed."""
        refs = [self._get_record(credentials, record_key(idempotency_key, n)) for n in range(len(post.parts))]
        if any(ref is None for ref in refs):
            return None
        first = refs[0]
        assert first is not None
        return self._result(credentials, first)

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        """Delete the post (`remote_id` is its at:// URI). Deleting a record that is gone succeeds, by design."""
        self._require_fresh(credentials)
        repo, collection, rkey = _split_at_uri(remote_id)
        self._http.request(
            "POST",
            f"{_pds(credentials)}/xrpc/com.atproto.repo.deleteRecord",
            token=credentials.access_token,
            json={"repo": repo, "collection": collection, "rkey": rkey},
        )

    # -- pieces ----------------------------------------------------------------------------------------------------

    @property
    def _app_url(self) -> str:
        return (self.settings.get("app_url") or DEFAULT_APP).rstrip("/")

    def _session_credentials(self, body: dict[str, Any], pds_url: str) -> Credentials:
        access, refresh = body.get("accessJwt"), body.get("refreshJwt")
        if not isinstance(access, str) or not isinstance(refresh, str) or not body.get("did"):
            raise AuthRevoked("Bluesky answered the sign-in unreadably. Reconnect the channel.")
        return Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=token_expiry(access),
            extra={"did": str(body["did"]), "handle": str(body.get("handle") or body["did"]), "pds_url": pds_url},
        )

    def _require_fresh(self, credentials: Credentials) -> None:
        """Refresh before the access token lapses, not after a refused post: ask the caller to refresh now."""
        expires_at = credentials.expires_at
        if expires_at is not None and expires_at - datetime.now(UTC) < self._refresh_margin:
            raise AuthExpired("The Bluesky session is about to expire; refreshing it first.")

    def _get_record(self, credentials: Credentials, rkey: str) -> StrongRef | None:
        try:
            response = self._http.request(
                "GET",
                f"{_pds(credentials)}/xrpc/com.atproto.repo.getRecord",
                token=credentials.access_token,
                params={"repo": _did(credentials), "collection": POST_COLLECTION, "rkey": rkey},
            )
        except RecordNotFound:
            return None
        body = _json_object(response)
        value = body.get("value")
        created_at = parse_time(value.get("createdAt")) if isinstance(value, dict) else None
        return StrongRef(str(body.get("uri")), str(body.get("cid")), created_at)

    def _create_record(self, credentials: Credentials, rkey: str, record: dict[str, Any]) -> StrongRef:
        response = self._http.request(
            "POST",
            f"{_pds(credentials)}/xrpc/com.atproto.repo.createRecord",
            token=credentials.access_token,
            mutation=True,
            json={"repo": _did(credentials), "collection": POST_COLLECTION, "rkey": rkey, "record": record},
        )
        body = _json_object(response)
        if not body.get("uri") or not body.get("cid"):
            raise TransientError("Bluesky accepted a post but its answer did not say which record it made.")
        return StrongRef(str(body["uri"]), str(body["cid"]), parse_time(record["createdAt"]))

    def _record(
        self, credentials: Credentials, post: OutboundPost, part: ThreadPart, earlier: list[StrongRef]
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": part.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        facets = richtext.facets(part.text, lambda handle: self._resolve_handle(credentials, handle))
        if facets:
            record["facets"] = facets
        embed = self._embed(credentials, part)
        if embed:
            record["embed"] = embed
        if earlier:
            record["reply"] = {"root": earlier[0].as_json(), "parent": earlier[-1].as_json()}
        if post.language:
            record["langs"] = [post.language]
        # A content warning has no Bluesky equivalent (its self-labels are for adult or graphic media): not sent.
        return record

    def _embed(self, credentials: Credentials, part: ThreadPart) -> dict[str, Any] | None:
        if part.media:
            if any(item.is_video for item in part.media):
                raise InvalidPost("Bluesky video is not supported yet: attach images.")
            if len(part.media) > self.capabilities.max_images:
                raise InvalidPost(f"Bluesky allows at most {self.capabilities.max_images} images.")
            images = [{"image": self._upload_blob(credentials, item), "alt": item.alt} for item in part.media]
            return {"$type": "app.bsky.embed.images", "images": images}
        link = richtext.first_link(part.text)
        if link:
            return {"$type": "app.bsky.embed.external", "external": {"uri": link, "title": link, "description": ""}}
        return None

    def _upload_blob(self, credentials: Credentials, item: Any) -> Any:
        """Upload one image (size checked first: the PDS would refuse it only when the post is made)."""
        loaded = media_files.load(item, self._http, max_bytes=self.capabilities.max_image_bytes)
        response = self._http.request(
            "POST",
            f"{_pds(credentials)}/xrpc/com.atproto.repo.uploadBlob",
            token=credentials.access_token,
            headers={"Content-Type": loaded.mime_type},
            content=loaded.data,
        )
        blob = _json_object(response).get("blob")
        if not isinstance(blob, dict):
            raise TransientError("Bluesky answered the image upload unreadably.")
        return blob

    def _resolve_handle(self, credentials: Credentials, handle: str) -> str | None:
        """The DID of a mentioned handle; None (the mention stays plain text) when it does not resolve."""
        try:
            response = self._http.request(
                "GET",
                f"{_pds(credentials)}/xrpc/com.atproto.identity.resolveHandle",
                token=credentials.access_token,
                params={"handle": handle},
            )
        except InvalidPost:
            return None
        did = _json_object(response).get("did")
        return did if isinstance(did, str) else None

    def _result(self, credentials: Credentials, ref: StrongRef) -> PublishResult:
        rkey = ref.uri.rsplit("/", 1)[-1]
        handle = credentials.extra.get("handle") or _did(credentials)
        return PublishResult(
            remote_id=ref.uri, url=f"{self._app_url}/profile/{handle}/post/{rkey}", published_at=ref.created_at
        )


def _pds(credentials: Credentials) -> str:
    return (credentials.extra.get("pds_url") or DEFAULT_PDS).rstrip("/")


def _did(credentials: Credentials) -> str:
    did = credentials.extra.get("did")
    if not did:
        raise AuthRevoked("This Bluesky connection does not name its account. Reconnect the channel.")
    return did


def _split_at_uri(uri: str) -> tuple[str, str, str]:
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidPost(f"{uri!r} is not a Bluesky post address.")
    return parts[0], parts[1], parts[2]


def _json_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    return body if isinstance(body, dict) else {}
