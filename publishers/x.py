"""X (API v2) over plain HTTP, per networks.md §3. tweepy is not used: it hard-codes api.twitter.com.

Connect: OAuth 2.0 authorization code with PKCE (S256) and `state`, scopes
`tweet.read tweet.write users.read media.write offline.access` (offline.access
is what yields a refresh token). Access tokens last 2 h and refresh tokens
ROTATE: `refresh` returns both and the caller stores them at once. A token that
lapses within `refresh_margin_seconds` is refreshed before sending (`AuthExpired`
is raised before any request), so a post never races its own token.

Idempotency: none exists (§3.4). `publish` is the single irreversible call per
part; the pipeline never retries it after an unknown outcome but reads back the
account's recent posts (`find_published`, first part's text, made since the
unknown attempt) and, if that cannot decide, marks the target `unconfirmed`.

Rate limits (§3.3): 429 with `x-rate-limit-reset` (epoch seconds) pauses the
channel; a spent 24-hour user cap (`x-user-limit-24hour-remaining: 0`) pauses it
until `x-user-limit-24hour-reset`; a spent app cap or a `usage-capped` problem
pauses every X channel (scope "app"), since it is our application's budget.

Media: images by the simple upload (`POST /2/media/upload`, multipart), video
by the chunked one (initialize / append / finalize, then STATUS polled until
`succeeded`). Threads: each part replies to the previous (`reply.in_reply_to_tweet_id`).

Settings: "client_id", "client_secret", "api_url" (https://api.x.com),
"authorize_url" (https://x.com/i/oauth2/authorize), "post_url" (https://x.com),
"refresh_margin_seconds", "media_poll_seconds", "media_wait_seconds", "timeout_seconds".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from publishers import media as media_files
from publishers.base import Capabilities, Credentials, Media, OAuthPublisher, OutboundPost, Profile, PublishResult
from publishers.capabilities import X
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    ConnectFailed,
    InvalidPost,
    PublisherError,
    RateLimited,
    TransientError,
)
from publishers.http import HttpClient, json_body, parse_reset, parse_time, timeout_from
from publishers.oauth import expires_soon, token_credentials

SCOPES = "tweet.read tweet.write users.read media.write offline.access"
READ_BACK_LIMIT = 20
CHUNK_BYTES = 1024 * 1024


def _epoch(headers: httpx.Headers, name: str) -> datetime | None:
    raw = headers.get(name)
    try:
        return datetime.fromtimestamp(float(raw), UTC) if raw else None
    except (ValueError, OverflowError, OSError):
        return None


def _classify(response: httpx.Response, reason: str, mutation: bool) -> PublisherError | None:
    """X's problem bodies and rate headers: which limit was hit decides what pauses."""
    status, headers = response.status_code, response.headers
    body = json_body(response)
    problem = str(body.get("type") or "") if isinstance(body, dict) else ""
    if status == 429:
        if problem.endswith("usage-capped") or headers.get("x-app-limit-24hour-remaining") == "0":
            reset = _epoch(headers, "x-app-limit-24hour-reset") or datetime.now(UTC) + timedelta(hours=24)
            return RateLimited(
                f"Our X application's daily allowance is used up; every X channel waits until {reset:%H:%M} UTC.",
                reset_at=reset,
                scope="app",
            )
        if headers.get("x-user-limit-24hour-remaining") == "0":
            reset = _epoch(headers, "x-user-limit-24hour-reset") or datetime.now(UTC) + timedelta(hours=24)
            return RateLimited(
                f"This X account's 24-hour posting limit is used up; it waits until {reset:%H:%M} UTC.",
                reset_at=reset,
            )
        reset = parse_reset(headers) or datetime.now(UTC) + timedelta(minutes=15)
        return RateLimited(f"X asked us to slow down until {reset:%H:%M:%S} UTC.", reset_at=reset)
    if status == 401:
        return AuthExpired(f"X refused the access token ({reason}).", http_status=status)
    if status == 403:
        detail = reason.lower()
        if "suspended" in detail or "not permitted to access this feature" in detail or "client-forbidden" in problem:
            return AuthRevoked(f"X refused this account: {reason}. Reconnect the channel.", http_status=status)
        if "duplicate" in detail:
            return InvalidPost(
                "X refused the post: the account already has a post with this exact text.", http_status=status
            )
        return InvalidPost(f"X refused the post: {reason}", http_status=status)
    return None


class XPublisher(OAuthPublisher):
    """X API v2. Thread-safe: one instance serves every channel."""

    capabilities: ClassVar[Capabilities] = X
    uses_pkce: ClassVar[bool] = True

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self._api = (settings.get("api_url") or "https://api.x.com").rstrip("/")
        self._http = HttpClient(network="X", timeout=timeout_from(settings), classify=_classify)
        self._margin = timedelta(seconds=float(settings.get("refresh_margin_seconds") or 300))
        self._poll_seconds = float(settings.get("media_poll_seconds") or 1.0)
        self._wait_seconds = float(settings.get("media_wait_seconds") or 120.0)

    def close(self) -> None:
        self._http.close()

    # -- connect ---------------------------------------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        params = {
            "response_type": "code",
            "client_id": self.settings.get("client_id") or "",
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "code_challenge": code_challenge or "",
            "code_challenge_method": "S256",
        }
        return f"{self.settings.get('authorize_url') or 'https://x.com/i/oauth2/authorize'}?{urlencode(params)}"

    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None) -> Credentials:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier or "",
            "client_id": self.settings.get("client_id") or "",
        }
        try:
            credentials = self._token(form)
        except PublisherError as exc:
            raise ConnectFailed(f"X refused the sign-in ({exc.message}).", http_status=exc.http_status) from None
        user = self._me(credentials)
        return Credentials(
            credentials.access_token,
            credentials.refresh_token,
            credentials.expires_at,
            {"user_id": str(user["id"]), "username": str(user.get("username") or "")},
        )

    def refresh(self, credentials: Credentials) -> Credentials:
        """New tokens. The refresh token rotates: the old one is dead once this returns, so store the result."""
        if not credentials.refresh_token:
            raise AuthRevoked("This X connection cannot be renewed. Reconnect the channel.")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.refresh_token,
            "client_id": self.settings.get("client_id") or "",
        }
        try:
            fresh = self._token(form)
        except (InvalidPost, AuthExpired, AuthRevoked) as exc:
            raise AuthRevoked(
                "X no longer accepts this connection. Reconnect the channel.", http_status=exc.http_status
            ) from None
        return Credentials(fresh.access_token, fresh.refresh_token, fresh.expires_at, credentials.extra)

    def profile(self, credentials: Credentials) -> Profile:
        user = self._me(credentials)
        username = str(user.get("username") or user["id"])
        return Profile(
            remote_id=str(user["id"]),
            handle=username,
            display_name=str(user.get("name") or username),
            url=f"{self._post_url}/{username}",
        )

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        """Create the post and its replies; the result names the first. Never call again after `OutcomeUnknown`."""
        self._require_fresh(credentials)
        first: PublishResult | None = None
        previous: str | None = None
        for part in post.parts:
            body: dict[str, Any] = {"text": part.text} if part.text else {}
            if part.media:
                body["media"] = {"media_ids": [self._upload(credentials, item) for item in part.media]}
            if previous is not None:
                body["reply"] = {"in_reply_to_tweet_id": previous}
            response = self._http.request(
                "POST", f"{self._api}/2/tweets", token=credentials.access_token, mutation=True, json=body
            )
            data = _data(response)
            if not data.get("id"):
                raise TransientError("X accepted a post but its answer did not say which post it made.")
            previous = str(data["id"])
            first = first or PublishResult(previous, self._url(credentials, previous), datetime.now(UTC))
        assert first is not None
        return first

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """Read back: the post (with EVERY part of its thread, each replying to the one before) made since `since`.

        None when any part is missing: a thread cut short is not reported as published, so a person
        checks it instead. Read-only.
        """
        self._require_fresh(credentials)
        user_id = credentials.extra.get("user_id") or str(self._me(credentials)["id"])
        response = self._http.request(
            "GET",
            f"{self._api}/2/users/{quote(user_id, safe='')}/tweets",
            token=credentials.access_token,
            params={"max_results": str(READ_BACK_LIMIT), "tweet.fields": "created_at,text,referenced_tweets"},
        )
        body = json_body(response)
        listed = [i for i in (body.get("data") if isinstance(body, dict) else None) or [] if isinstance(i, dict)]
        recent = [i for i in listed if (parse_time(i.get("created_at")) or since) >= since]
        first: PublishResult | None = None
        previous: str | None = None
        for part in post.parts:
            found = next((i for i in recent if _same_text(i, part.text) and _replies_to(i) == previous), None)
            if found is None:
                return None
            previous = str(found["id"])
            first = first or PublishResult(previous, self._url(credentials, previous), parse_time(found["created_at"]))
        return first

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        self._require_fresh(credentials)
        try:
            self._http.request(
                "DELETE", f"{self._api}/2/tweets/{quote(remote_id, safe='')}", token=credentials.access_token
            )
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise

    # -- pieces ----------------------------------------------------------------------------------------------------

    @property
    def _post_url(self) -> str:
        return (self.settings.get("post_url") or "https://x.com").rstrip("/")

    def _url(self, credentials: Credentials, post_id: str) -> str:
        return f"{self._post_url}/{credentials.extra.get('username') or 'i'}/status/{post_id}"

    def _token(self, form: dict[str, str]) -> Credentials:
        auth = (self.settings.get("client_id") or "", self.settings.get("client_secret") or "")
        response = self._http.request("POST", f"{self._api}/2/oauth2/token", data=form, auth=auth)
        return token_credentials(json_body(response), network="X")

    def _me(self, credentials: Credentials) -> dict[str, Any]:
        response = self._http.request("GET", f"{self._api}/2/users/me", token=credentials.access_token)
        user = _data(response)
        if not user.get("id"):
            raise TransientError("X answered with an account we could not read.")
        return user

    def _require_fresh(self, credentials: Credentials) -> None:
        if expires_soon(credentials, self._margin):
            raise AuthExpired("The X access token is about to expire; refreshing it first.")

    def _upload(self, credentials: Credentials, item: Media) -> str:
        """Upload one attachment (creates nothing visible, so safe to redo); its media id once processed."""
        caps = self.capabilities
        loaded = media_files.load(
            item, self._http, max_bytes=caps.max_video_bytes if item.is_video else caps.max_image_bytes
        )
        token = credentials.access_token
        if not loaded.mime_type.startswith("video/"):
            response = self._http.request(
                "POST",
                f"{self._api}/2/media/upload",
                token=token,
                files={"media": (loaded.filename, loaded.data, loaded.mime_type)},
                data={"media_category": "tweet_image"},
            )
            return _media_id(response)
        started = self._http.request(
            "POST",
            f"{self._api}/2/media/upload/initialize",
            token=token,
            json={"media_type": loaded.mime_type, "total_bytes": len(loaded.data), "media_category": "tweet_video"},
        )
        media_id = _media_id(started)
        for index, offset in enumerate(range(0, len(loaded.data), CHUNK_BYTES)):
            self._http.request(
                "POST",
                f"{self._api}/2/media/upload/{media_id}/append",
                token=token,
                files={"media": ("chunk", loaded.data[offset : offset + CHUNK_BYTES], "application/octet-stream")},
                data={"segment_index": str(index)},
            )
        finished = _data(self._http.request("POST", f"{self._api}/2/media/upload/{media_id}/finalize", token=token))
        if finished.get("processing_info"):
            self._wait_for_media(token, media_id)
        return media_id

    def _wait_for_media(self, token: str, media_id: str) -> None:
        deadline = time.monotonic() + self._wait_seconds
        while True:
            response = self._http.request(
                "GET", f"{self._api}/2/media/upload", token=token, params={"command": "STATUS", "media_id": media_id}
            )
            info = _data(response).get("processing_info") or {}
            state = info.get("state")
            if state in (None, "succeeded"):
                return
            if state == "failed":
                error = info.get("error") or {}
                raise InvalidPost(f"X could not process the video: {error.get('message') or 'unknown reason'}.")
            if time.monotonic() + self._poll_seconds > deadline:
                raise TransientError("X is still processing the video; trying again later.")
            time.sleep(self._poll_seconds)


def _same_text(item: dict[str, Any], text: str) -> bool:
    return " ".join(str(item.get("text") or "").split()) == " ".join(text.split())


def _replies_to(item: dict[str, Any]) -> str | None:
    """The id of the post this one replies to (None: not a reply)."""
    for reference in item.get("referenced_tweets") or []:
        if isinstance(reference, dict) and reference.get("type") == "replied_to":
            return str(reference.get("id"))
    return None


def _data(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _media_id(response: httpx.Response) -> str:
    media_id = _data(response).get("id")
    if not media_id:
        raise TransientError("X answered the media upload unreadably.")
    return str(media_id)
