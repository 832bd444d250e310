"""Threads (Meta) over plain HTTP, per networks.md §7.

Connect: authorization code with `state` at threads.net (scopes
`threads_basic,threads_content_publish,threads_manage_replies,threads_delete`);
the code gives a short-lived token (1 h) that is traded at once for a
long-lived one (about 60 days, `th_exchange_token`), which `refresh` renews
(`th_refresh_token`) before it lapses (`refresh_margin_seconds`, default 7 days).

Publish: containers (`publishers.graph.ContainerFlow`): TEXT, IMAGE, VIDEO or
a CAROUSEL; a thread is each next part replying to the previous part's media
id (`reply_to_id`). Each part's container id, and its media id once published,
are checkpointed, so a retry resumes the thread where it stopped and never
publishes a container twice. The "not yet visible" race (24/4279009) on
publish is retried a few times: a container cannot be published twice.
The quota is read from `threads_publishing_limit` before each post.
Text: 500, each emoji counted as its UTF-8 bytes. Media must be public URLs.

Settings: "client_id", "client_secret", "authorize_url" (https://threads.net/oauth/authorize),
"graph_url" (https://graph.threads.net), "version" (v1.0), "refresh_margin_seconds",
"media_poll_seconds", "media_wait_seconds", "timeout_seconds".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from publishers import graph
from publishers.base import (
    Capabilities,
    Checkpoints,
    Credentials,
    Media,
    OutboundPost,
    Profile,
    PublishResult,
    ResumablePublisher,
    ThreadPart,
)
from publishers.capabilities import THREADS
from publishers.errors import AuthExpired, AuthRevoked, ConnectFailed, InvalidPost, PublisherError
from publishers.http import HttpClient, json_body, timeout_from
from publishers.oauth import client_fields, expires_soon, token_credentials

SCOPES = "threads_basic,threads_content_publish,threads_manage_replies,threads_delete"
API = graph.ContainerApi(
    network="Threads",
    create_path="threads",
    publish_path="threads_publish",
    status_field="status",
    error_field="error_message",
    quota_path="threads_publishing_limit",
    list_path="threads",
    text_field="text",
)


class ThreadsPublisher(ResumablePublisher):
    """Threads. The Threads user id travels in the credentials."""

    capabilities: ClassVar[Capabilities] = THREADS

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self._http = HttpClient(network="Threads", timeout=timeout_from(settings), classify=graph.classifier("Threads"))
        self._host = (settings.get("graph_url") or "https://graph.threads.net").rstrip("/")
        self._graph = f"{self._host}/{settings.get('version') or 'v1.0'}"
        self._margin = graph.renewal_margin(settings)
        self.flow = graph.container_flow(self._http, API, settings)

    def close(self) -> None:
        self._http.close()

    # -- connect ---------------------------------------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        params = {
            "client_id": self.settings.get("client_id") or "",
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "response_type": "code",
            "state": state,
        }
        return f"{self.settings.get('authorize_url') or 'https://threads.net/oauth/authorize'}?{urlencode(params)}"

    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None) -> Credentials:
        """The code → a 1-hour token → a 60-day token, and the Threads user id."""
        client = client_fields(self.settings)
        form = client | {"grant_type": "authorization_code", "redirect_uri": redirect_uri, "code": code}
        try:
            response = self._http.request("POST", f"{self._host}/oauth/access_token", data=form)
            body = json_body(response)
            short = token_credentials(body, network="Threads")
            user_id = str(body.get("user_id") or "") if isinstance(body, dict) else ""
            params = {"grant_type": "th_exchange_token", "client_secret": client["client_secret"]}
            long = self._token("access_token", params, short.access_token)
        except PublisherError as exc:
            raise ConnectFailed(f"Threads refused the sign-in ({exc.message}).", http_status=exc.http_status) from None
        return Credentials(long.access_token, None, long.expires_at, {"user_id": user_id})

    def refresh(self, credentials: Credentials) -> Credentials:
        """A new 60-day token from the current, still valid one; the caller stores it."""
        try:
            fresh = self._token("refresh_access_token", {"grant_type": "th_refresh_token"}, credentials.access_token)
        except (InvalidPost, AuthExpired, AuthRevoked):
            raise AuthRevoked("Threads no longer accepts this connection. Reconnect the channel.") from None
        return Credentials(fresh.access_token, None, fresh.expires_at, credentials.extra)

    def profile(self, credentials: Credentials) -> Profile:
        response = self._http.request(
            "GET", f"{self._graph}/me", token=credentials.access_token, params={"fields": "id,username,name"}
        )
        body: Any = json_body(response)
        body = body if isinstance(body, dict) else {}
        username = str(body.get("username") or body.get("id") or "")
        if not body.get("id"):
            raise ConnectFailed("Threads answered with an account we could not read.")
        return Profile(
            str(body["id"]), username, str(body.get("name") or username), f"https://www.threads.net/@{username}"
        )

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish_resumable(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, checkpoints: Checkpoints
    ) -> PublishResult:
        if expires_soon(credentials, self._margin):
            raise AuthExpired("The Threads token is about to expire; renewing it first.")
        return self.flow.publish(self._graph, _user(credentials), post, credentials, checkpoints, _container, _child)

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        media_id = self.flow.find_media(self._graph, _user(credentials), credentials.access_token, post.text)
        if media_id is None:
            return None
        return PublishResult(media_id, self.flow.permalink(self._graph, credentials.access_token, media_id))

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        try:
            self._http.request("DELETE", f"{self._graph}/{quote(remote_id, safe='')}", token=credentials.access_token)
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise

    def _token(self, path: str, params: dict[str, str], token: str) -> Credentials:
        response = self._http.request("GET", f"{self._host}/{path}", params=params | {"access_token": token})
        return token_credentials(json_body(response), network="Threads")


def _child(item: Media) -> dict[str, str]:
    url = graph.public_url(item, "Threads")
    kind = {"media_type": "VIDEO", "video_url": url} if item.is_video else {"media_type": "IMAGE", "image_url": url}
    return {"is_carousel_item": "true"} | kind


def _container(part: ThreadPart, reply_to: str | None, children: list[str]) -> dict[str, str]:
    fields = {"text": part.text} | ({"reply_to_id": reply_to} if reply_to else {})
    if children:
        return fields | {"media_type": "CAROUSEL", "children": ",".join(children)}
    if not part.media:
        return fields | {"media_type": "TEXT"}
    [item] = part.media
    url = graph.public_url(item, "Threads")
    if item.is_video:
        return fields | {"media_type": "VIDEO", "video_url": url}
    return fields | {"media_type": "IMAGE", "image_url": url} | ({"alt_text": item.alt} if item.alt else {})


def _user(credentials: Credentials) -> str:
    user_id = credentials.extra.get("user_id")
    if not user_id:
        raise AuthRevoked("This Threads connection does not name its account. Reconnect the channel.")
    return user_id
