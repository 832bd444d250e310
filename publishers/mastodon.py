"""Mastodon (and API-compatible servers) over plain HTTP, per networks.md §1.

Every account lives on its own instance, so the instance URL travels with the
channel's credentials (`extra["instance_url"]`, plus `extra["account_id"]` for
read-back) and one adapter serves every instance and every thread: it keeps no
per-call state.

Connect (authorization code): `register_app` once per instance (the app stores
the registration), `supports_pkce` (the 4.3+ discovery document), then
`authorization_url` → the user approves → `exchange_code` → `profile` and
`instance_limits` (max characters, media per post, URL length), all stored on
the channel. Tokens never expire and there is no refresh token: a 401 means the
user revoked us, and the channel must be reconnected (`refresh` keeps the
base class's `AuthRevoked`).

Idempotency: each part n of a post (0 is the post itself, 1.. its thread
replies) is sent with `Idempotency-Key: <target key>:<n>`, the same on every
retry, so inside Mastodon's one-hour window a retry of a thread whose first
parts went out gets those parts back instead of posting them again, and the
reply chain continues from the same ids. Media are uploaded again on a retry;
unattached uploads are harmless and the instance removes them.

Media: `POST /api/v2/media` answers 200 (ready) or 202 (still processing);
`GET /api/v1/media/:id` is polled (206 pending, 200 ready) for at most
`media_wait_seconds`. Media still processing after that is a `TransientError`:
nothing visible was created, so the pipeline retries later. A 422 "not
finished processing" on the status is waited out once, with the same key.

Threads: each reply is `in_reply_to_id` the part before it. Replies to a public
post go out `unlisted`, the usual courtesy so a thread does not flood the
public timelines. `PublishResult` names the first part; `delete` deletes that
part (Mastodon keeps the replies as posts of their own).

Settings: "client_name", "website", "scopes", "allow_http" ("1" lets an
http:// instance connect: local fakes only), "timeout_seconds",
"media_poll_seconds", "media_wait_seconds".
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import httpx

from publishers import media as media_files
from publishers.base import (
    Capabilities,
    Credentials,
    Media,
    OutboundPost,
    Profile,
    Publisher,
    PublishResult,
    ThreadPart,
)
from publishers.capabilities import MASTODON
from publishers.errors import AuthRevoked, ConnectFailed, InvalidPost, PublisherError, TransientError
from publishers.http import HttpClient, json_body, parse_time, timeout_from

DEFAULT_SCOPES = "read:accounts read:statuses write:statuses write:media"
READ_BACK_LIMIT = 40  # Mastodon's maximum page of an account's statuses
NOT_PROCESSED = "finished processing"  # in the 422 for media still being processed


@dataclass(frozen=True)
class AppRegistration:
    """Our application as one instance knows it (POST /api/v1/apps). The secret is stored encrypted."""

    instance_url: str
    client_id: str
    client_secret: str


def part_key(idempotency_key: str, part: int) -> str:
    """The Idempotency-Key for one part of a post: stable across every retry of that target."""
    return f"{idempotency_key}:{part}"


class MastodonPublisher(Publisher):
    """Mastodon over HTTP. Thread-safe: one instance serves every channel on every instance."""

    capabilities: ClassVar[Capabilities] = MASTODON

    def __init__(self, settings: Mapping[str, str], *, transport: httpx.BaseTransport | None = None) -> None:
        # `transport`: the app passes one that checks each instance's address (instances are named by users).
        super().__init__(settings)
        self._http = HttpClient(
            network=self.capabilities.display_name, timeout=timeout_from(settings), transport=transport
        )
        self._poll_seconds = float(settings.get("media_poll_seconds") or 1.0)
        self._wait_seconds = float(settings.get("media_wait_seconds") or 60.0)
        self.allow_http = settings.get("allow_http") == "1"

    def close(self) -> None:
        self._http.close()

    # -- connect ---------------------------------------------------------------------------------------------------

    def register_app(self, instance_url: str, redirect_uri: str) -> AppRegistration:
        """Register Multipost with the instance (done once per instance; the caller stores the result)."""
        body = {
            "client_name": self.settings.get("client_name") or "Multipost",
            "redirect_uris": redirect_uri,
            "scopes": self._scopes,
            "website": self.settings.get("website") or "",
        }
        response = self._connect_call("POST", f"{instance_url}/api/v1/apps", json=body)
        data = json_body(response)
        if not isinstance(data, dict) or not data.get("client_id") or not data.get("client_secret"):
            raise ConnectFailed(f"{instance_url} answered the app registration unreadably.")
        return AppRegistration(instance_url, str(data["client_id"]), str(data["client_secret"]))

    def supports_pkce(self, instance_url: str) -> bool:
        """Whether the instance takes PKCE (Mastodon 4.3+ says so in its discovery document; older ones 404)."""
        try:
            response = self._http.request("GET", f"{instance_url}/.well-known/oauth-authorization-server")
        except PublisherError:
            return False
        data = json_body(response)
        return isinstance(data, dict) and "S256" in (data.get("code_challenge_methods_supported") or [])

    def authorization_url(self, app: AppRegistration, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        """Where to send the person to approve us; they come back to `redirect_uri` with `code` and `state`."""
        params = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "scope": self._scopes,
            "state": state,
        }
        if code_challenge:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{app.instance_url}/oauth/authorize?{urlencode(params)}"

    def exchange_code(
        self, app: AppRegistration, redirect_uri: str, code: str, code_verifier: str | None
    ) -> Credentials:
        """Trade the callback's code for a token, and note which account it acts for."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": redirect_uri,
            "scope": self._scopes,
        }
        if code_verifier:
            form["code_verifier"] = code_verifier
        response = self._connect_call("POST", f"{app.instance_url}/oauth/token", data=form)
        data = json_body(response)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise ConnectFailed(f"{app.instance_url} answered the sign-in unreadably.")
        credentials = Credentials(access_token=data["access_token"], extra={"instance_url": app.instance_url})
        account = self._account(credentials)
        return Credentials(
            access_token=credentials.access_token,
            extra={"instance_url": app.instance_url, "account_id": str(account["id"])},
        )

    def instance_limits(self, instance_url: str) -> dict[str, int]:
        """The instance's own posting limits (GET /api/v2/instance), for validation; defaults where it is silent."""
        response = self._connect_call("GET", f"{instance_url}/api/v2/instance")
        data = json_body(response)
        configuration = data.get("configuration") if isinstance(data, dict) else None
        statuses = (configuration or {}).get("statuses") or {}
        caps = self.capabilities
        return {
            "max_characters": _int(statuses.get("max_characters"), caps.max_text_length),
            "max_media_attachments": _int(statuses.get("max_media_attachments"), caps.max_images),
            "characters_reserved_per_url": _int(statuses.get("characters_reserved_per_url"), caps.url_length or 23),
        }

    def profile(self, credentials: Credentials) -> Profile:
        """The account. Its id is unique only on its instance, so `remote_id` is "<id>@<instance host>"."""
        account = self._account(credentials)
        host = urlsplit(_instance(credentials)).netloc
        username = str(account.get("acct") or account.get("username"))
        return Profile(
            remote_id=f"{account['id']}@{host}",
            handle=username if "@" in username else f"{username}@{host}",
            display_name=str(account.get("display_name") or username),
            url=str(account["url"]) if account.get("url") else None,
        )

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        """Create the post and its thread replies; the result names the first part.

        On `OutcomeUnknown` retry only with the same `idempotency_key` and inside the
        one-hour window (every part then comes back instead of being posted again);
        after that, read back with `find_published`.
        """
        instance = _instance(credentials)
        first: PublishResult | None = None
        previous: str | None = None
        for number, part in enumerate(post.parts):
            media_ids = [self._upload(instance, credentials, item) for item in part.media]
            body = self._status_body(post, part, media_ids, in_reply_to_id=previous)
            status = self._create_status(instance, credentials, body, part_key(idempotency_key, number), media_ids)
            result = _publish_result(status)
            if result is None:
                raise TransientError("Mastodon accepted a post but its answer did not say which post it made.")
            first = first or result
            previous = result.remote_id
        assert first is not None  # parts always holds the first post
        return first

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """The account's top-level post with this text made at or after `since` (the newest 40 are searched).

        Read-only. Compares the status's text with its HTML taken off: links and local
        mentions read back as typed; a remote mention reads back without its domain.
        """
        instance = _instance(credentials)
        account_id = credentials.extra.get("account_id") or str(self._account(credentials)["id"])
        response = self._http.request(
            "GET",
            f"{instance}/api/v1/accounts/{quote(account_id, safe='')}/statuses",
            token=credentials.access_token,
            params={"limit": str(READ_BACK_LIMIT), "exclude_replies": "true"},
        )
        listed = json_body(response)
        if not isinstance(listed, list):
            raise TransientError("Mastodon answered the read-back with something other than a list of posts.")
        wanted = _normalise(post.text)
        matches = [
            result
            for item in listed
            if isinstance(item, dict) and _normalise(plain_text(str(item.get("content") or ""))) == wanted
            for result in [_publish_result(item)]
            if result is not None and (result.published_at is None or result.published_at >= since)
        ]
        aware_min = datetime.min.replace(tzinfo=UTC)
        matches.sort(key=lambda result: result.published_at or aware_min, reverse=True)
        return matches[0] if matches else None

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        """Delete the post. One that is already gone (404) counts as deleted."""
        try:
            self._http.request(
                "DELETE",
                f"{_instance(credentials)}/api/v1/statuses/{quote(remote_id, safe='')}",
                token=credentials.access_token,
            )
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise

    # -- pieces ----------------------------------------------------------------------------------------------------

    @property
    def _scopes(self) -> str:
        return self.settings.get("scopes") or DEFAULT_SCOPES

    def _connect_call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request made while connecting: any refusal is a `ConnectFailed` with the server's reason."""
        try:
            return self._http.request(method, url, **kwargs)
        except (InvalidPost, AuthRevoked) as exc:
            raise ConnectFailed(
                exc.message.replace("refused the post", "refused the connection"), http_status=exc.http_status
            ) from None

    def _account(self, credentials: Credentials) -> dict[str, Any]:
        response = self._http.request(
            "GET", f"{_instance(credentials)}/api/v1/accounts/verify_credentials", token=credentials.access_token
        )
        account = json_body(response)
        if not isinstance(account, dict) or not account.get("id"):
            raise TransientError("Mastodon answered with an account we could not read.")
        return account

    def _status_body(
        self, post: OutboundPost, part: ThreadPart, media_ids: list[str], *, in_reply_to_id: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": part.text}
        if media_ids:
            body["media_ids"] = media_ids
        visibility = post.visibility
        if in_reply_to_id is not None:
            body["in_reply_to_id"] = in_reply_to_id
            if visibility in (None, "public"):
                visibility = "unlisted"
        if visibility:
            body["visibility"] = visibility
        if post.content_warning:
            body["spoiler_text"] = post.content_warning
            body["sensitive"] = True
        if post.language:
            body["language"] = post.language
        return body

    def _create_status(
        self, instance: str, credentials: Credentials, body: dict[str, Any], key: str, media_ids: list[str]
    ) -> Any:
        """POST the status; a 422 for media still processing is waited out once, with the same key."""
        for last_try in (False, True):
            try:
                response = self._http.request(
                    "POST",
                    f"{instance}/api/v1/statuses",
                    token=credentials.access_token,
                    mutation=True,
                    headers={"Idempotency-Key": key},
                    json=body,
                )
                return json_body(response)
            except InvalidPost as exc:
                if last_try or exc.http_status != 422 or NOT_PROCESSED not in exc.message:
                    raise
                for media_id in media_ids:
                    self._wait_until_processed(instance, credentials, media_id)
        raise AssertionError("unreachable")

    def _upload(self, instance: str, credentials: Credentials, item: Media) -> str:
        """Upload one attachment with its alt text; returns its id once the instance has processed it."""
        max_bytes = self.capabilities.max_video_bytes if item.is_video else self.capabilities.max_image_bytes
        loaded = media_files.load(item, self._http, max_bytes=max_bytes)
        response = self._http.request(
            "POST",
            f"{instance}/api/v2/media",
            token=credentials.access_token,
            files={"file": (loaded.filename, loaded.data, loaded.mime_type)},
            data={"description": loaded.alt} if loaded.alt else None,
        )
        attachment = json_body(response)
        if not isinstance(attachment, dict) or not attachment.get("id"):
            raise TransientError("Mastodon answered the media upload unreadably.")
        media_id = str(attachment["id"])
        if response.status_code == 202 or not attachment.get("url"):
            self._wait_until_processed(instance, credentials, media_id)
        return media_id

    def _wait_until_processed(self, instance: str, credentials: Credentials, media_id: str) -> None:
        """Poll the attachment until it has a URL. Read-only; `TransientError` if it takes too long."""
        deadline = time.monotonic() + self._wait_seconds
        while True:
            response = self._http.request(
                "GET", f"{instance}/api/v1/media/{quote(media_id, safe='')}", token=credentials.access_token
            )
            attachment = json_body(response)
            if response.status_code == 200 and isinstance(attachment, dict) and attachment.get("url"):
                return
            if time.monotonic() + self._poll_seconds > deadline:
                raise TransientError("Mastodon is still processing the attached media; trying again later.")
            time.sleep(self._poll_seconds)


def _instance(credentials: Credentials) -> str:
    instance = credentials.extra.get("instance_url")
    if not instance:
        raise AuthRevoked("This Mastodon connection does not say which server it is on. Reconnect the channel.")
    return instance.rstrip("/")


_BREAKS = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def plain_text(content: str) -> str:
    """A status's HTML `content` as the text that was typed (paragraphs and line breaks become newlines)."""
    return html.unescape(_TAGS.sub("", _BREAKS.sub("\n", content)))


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _publish_result(item: Any) -> PublishResult | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    return PublishResult(
        remote_id=str(item["id"]),
        url=str(item.get("url") or item.get("uri") or "") or None,
        published_at=parse_time(item.get("created_at")),
    )
