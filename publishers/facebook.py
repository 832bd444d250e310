"""Facebook Pages over the Graph API (plain HTTP), per networks.md §5.

Connect (`FacebookLogin`, shared with Instagram): Facebook Login authorization
code with `state` → a short-lived user token → exchanged for a long-lived one
(about 60 days) → `GET /me/accounts` lists the Pages the person may post to,
each with its own Page token, and the person picks which become channels. A
Page token made from a long-lived user token does not expire; it dies with a
password change or a removed role (190), and then the channel needs reconnecting.
The Graph version ("version", e.g. v24.0) is a setting: versions expire after
about two years.

Publish: text to `/{page}/feed`; photos uploaded unpublished (`/{page}/photos`,
multipart `source`, so local files work) then attached to one feed post.
Delete: `DELETE /{post}`. A first comment (`publishers.comments`) goes to
`POST /{post}/comments` as the Page once the feed post is live.

Idempotency: none (error 506 only catches consecutive identical posts). After
an unknown outcome the pipeline reads back `/{page}/published_posts` for this
text since the attempt, and marks the target `unconfirmed` if that cannot tell.

Settings: "client_id", "client_secret", "dialog_url" (https://www.facebook.com),
"graph_url" (https://graph.facebook.com), "version", "timeout_seconds".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from publishers import graph
from publishers import media as media_files
from publishers.base import (
    Capabilities,
    Checkpoints,
    ConnectableAccount,
    Credentials,
    OutboundPost,
    Profile,
    PublishResult,
    ResumablePublisher,
)
from publishers.capabilities import FACEBOOK_PAGES
from publishers.comments import add_first_comment
from publishers.errors import AuthRevoked, ConnectFailed, InvalidPost, PublisherError, TransientError
from publishers.http import HttpClient, json_body, parse_time, timeout_from
from publishers.oauth import client_fields, token_credentials

DEFAULT_GRAPH_VERSION = "v24.0"
# pages_manage_engagement: the Page comments its own first comment (§5.1).
PAGE_SCOPES = "pages_show_list,pages_manage_posts,pages_read_engagement,pages_manage_engagement"


class FacebookLogin:
    """Facebook Login for one app: the authorization URL, the code → long-lived user token exchange."""

    def __init__(self, settings: Mapping[str, str], http: HttpClient, scopes: str) -> None:
        self.settings, self.http, self.scopes = settings, http, scopes
        self.version = settings.get("version") or DEFAULT_GRAPH_VERSION
        self.graph = f"{(settings.get('graph_url') or 'https://graph.facebook.com').rstrip('/')}/{self.version}"

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        params = {
            "client_id": self.settings.get("client_id") or "",
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": self.scopes,
            "response_type": "code",
        }
        dialog = (self.settings.get("dialog_url") or "https://www.facebook.com").rstrip("/")
        return f"{dialog}/{self.version}/dialog/oauth?{urlencode(params)}"

    def exchange_code(self, redirect_uri: str, code: str) -> Credentials:
        """The long-lived user token for this login (the short-lived one is traded at once)."""
        client = client_fields(self.settings)
        try:
            short = self._token(client | {"redirect_uri": redirect_uri, "code": code})
        except PublisherError as exc:
            raise ConnectFailed(f"Facebook refused the sign-in ({exc.message}).", http_status=exc.http_status) from None
        return self.long_lived(short)

    def long_lived(self, credentials: Credentials) -> Credentials:
        """A new ~60-day user token from a valid one (also how a long-lived token is renewed before it lapses)."""
        client = client_fields(self.settings)
        form = client | {"grant_type": "fb_exchange_token", "fb_exchange_token": credentials.access_token}
        fresh = self._token(form)
        return Credentials(fresh.access_token, None, fresh.expires_at, credentials.extra)

    def pages(self, user: Credentials, fields: str) -> list[dict[str, Any]]:
        response = self.http.request(
            "GET", f"{self.graph}/me/accounts", token=user.access_token, params={"fields": fields, "limit": "100"}
        )
        body = json_body(response)
        data = body.get("data") if isinstance(body, dict) else None
        return [page for page in data if isinstance(page, dict) and page.get("id")] if isinstance(data, list) else []

    def _token(self, params: dict[str, str]) -> Credentials:
        response = self.http.request("GET", f"{self.graph}/oauth/access_token", params=params)
        return token_credentials(json_body(response), network="Facebook")


class FacebookLoginMixin:
    """Connecting through Facebook Login, for the adapters that use it (Pages, Instagram)."""

    _http: HttpClient
    login: FacebookLogin

    def use_facebook_login(self, settings: Mapping[str, str], network: str, scopes: str) -> None:
        self._http = HttpClient(network=network, timeout=timeout_from(settings), classify=graph.classifier(network))
        self.login = FacebookLogin(settings, self._http, scopes)

    def close(self) -> None:
        self._http.close()

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        return self.login.authorization_url(redirect_uri, state)

    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None) -> Credentials:
        return self.login.exchange_code(redirect_uri, code)


class FacebookPagesPublisher(FacebookLoginMixin, ResumablePublisher):
    """Facebook Pages. The Page id and its token travel in the credentials."""

    capabilities: ClassVar[Capabilities] = FACEBOOK_PAGES

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.use_facebook_login(settings, "Facebook", PAGE_SCOPES)

    def validate(self, post: OutboundPost, limits: Mapping[str, int] | None = None) -> list[str]:
        problems = super().validate(post, limits)
        if any(item.is_video for item in post.attachments):
            problems.append("Facebook video is not supported yet: attach images.")
        return problems

    # -- connect ---------------------------------------------------------------------------------------------------

    def accounts(self, credentials: Credentials) -> list[ConnectableAccount]:
        """Each Page the person may create content on, with its own Page token."""
        found = []
        for page in self.login.pages(credentials, "id,name,access_token,tasks,link"):
            tasks = page.get("tasks")
            if isinstance(tasks, list) and "CREATE_CONTENT" not in tasks:
                continue
            page_id, name = str(page["id"]), str(page.get("name") or page["id"])
            page_token = Credentials(str(page.get("access_token") or ""), extra={"page_id": page_id, "name": name})
            url = str(page.get("link") or f"https://www.facebook.com/{page_id}")
            found.append(ConnectableAccount(Profile(page_id, name, name, url), page_token, kind="Page"))
        return found

    def profile(self, credentials: Credentials) -> Profile:
        page_id = _page(credentials)
        response = self._http.request(
            "GET", f"{self.login.graph}/{page_id}", token=credentials.access_token, params={"fields": "id,name,link"}
        )
        body = json_body(response)
        body = body if isinstance(body, dict) else {}
        name = str(body.get("name") or page_id)
        return Profile(page_id, name, name, str(body.get("link") or f"https://www.facebook.com/{page_id}"))

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish_resumable(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, checkpoints: Checkpoints
    ) -> PublishResult:
        """One feed post (photos uploaded unpublished first), then its first comment. Never call again after
        `OutcomeUnknown`. The checkpoints only remember the first comment: the feed post itself is found by
        read-back after an unknown outcome."""
        page_id, token = _page(credentials), credentials.access_token
        fields: dict[str, str] = {"message": post.text, "published": "true"}
        photos = [self._upload_photo(page_id, token, item) for item in post.attachments]
        for index, photo in enumerate(photos):
            fields[f"attached_media[{index}]"] = f'{{"media_fbid":"{photo}"}}'
        response = self._http.request(
            "POST", f"{self.login.graph}/{page_id}/feed", token=token, mutation=True, data=fields
        )
        body = json_body(response)
        post_id = body.get("id") if isinstance(body, dict) else None
        if not post_id:
            raise TransientError("Facebook accepted a post but its answer did not say which post it made.")
        page_post = str(post_id)
        return add_first_comment(
            self._result(page_post, None),
            post.first_comment,
            checkpoints,
            network="Facebook",
            send=lambda text: graph.send_comment(self._http, self.login.graph, token, page_post, text),
            find=lambda text: graph.find_comment(
                self._http, self.login.graph, token, page_post, text, page_id, "message"
            ),
        )

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """Read back the Page's recent posts for this text made at or after `since`. Read-only."""
        response = self._http.request(
            "GET",
            f"{self.login.graph}/{_page(credentials)}/published_posts",
            token=credentials.access_token,
            params={"fields": "id,message,created_time,permalink_url", "limit": "25"},
        )
        body = json_body(response)
        wanted = " ".join(post.text.split())
        for item in (body.get("data") if isinstance(body, dict) else None) or []:
            created = parse_time(_graph_time(item.get("created_time")))
            if created is not None and created >= since and " ".join(str(item.get("message") or "").split()) == wanted:
                return PublishResult(str(item["id"]), item.get("permalink_url") or None, created)
        return None

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        try:
            self._http.request(
                "DELETE", f"{self.login.graph}/{quote(remote_id, safe='')}", token=credentials.access_token
            )
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise

    def _result(self, post_id: str, created: datetime | None) -> PublishResult:
        page_id, _, story = post_id.partition("_")
        return PublishResult(post_id, f"https://www.facebook.com/{page_id}/posts/{story or page_id}", created)

    def _upload_photo(self, page_id: str, token: str, item: Any) -> str:
        """An unpublished photo: invisible until a feed post attaches it, so a retry only leaves an orphan."""
        loaded = media_files.load(item, self._http, max_bytes=self.capabilities.max_image_bytes)
        response = self._http.request(
            "POST",
            f"{self.login.graph}/{page_id}/photos",
            token=token,
            files={"source": (loaded.filename, loaded.data, loaded.mime_type)},
            data={"published": "false", **({"alt_text_custom": loaded.alt} if loaded.alt else {})},
        )
        body = json_body(response)
        photo = body.get("id") if isinstance(body, dict) else None
        if not photo:
            raise TransientError("Facebook answered the photo upload unreadably.")
        return str(photo)


def _graph_time(raw: Any) -> Any:
    """Graph writes "2026-01-02T03:04:05+0000"; Python wants a colon in the offset."""
    if isinstance(raw, str) and len(raw) > 5 and raw[-5] in "+-" and raw[-4:].isdigit():
        return f"{raw[:-2]}:{raw[-2:]}"
    return raw


def _page(credentials: Credentials) -> str:
    page_id = credentials.extra.get("page_id")
    if not page_id:
        raise AuthRevoked("This Facebook connection does not name its Page. Reconnect the channel.")
    return page_id
