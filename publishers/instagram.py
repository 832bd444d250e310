"""Instagram content publishing (Instagram API with Facebook Login) over plain HTTP, per networks.md §6.

Connect: Facebook Login (`publishers.facebook.FacebookLogin`) with
`instagram_basic,instagram_content_publish,pages_show_list,pages_read_engagement`;
every Page the person manages may have an Instagram professional account
(`instagram_business_account`), and the person picks which become channels.
The credentials are the long-lived user token (about 60 days) plus the
Instagram user id; `refresh` trades it for a new one before it lapses
(`refresh_margin_seconds`, default 7 days), and the caller stores the result.

Publish: always a container (`publishers.graph.ContainerFlow`): one image or
video (REELS), or a carousel of 2..10. Meta downloads the media itself, so a
source must be a public URL. Media is required (validated when scheduling).
The daily publishing quota is read from `content_publishing_limit` before each
post; a spent quota is `RateLimited` until the rolling window frees a slot.
Delete is not offered: the API cannot delete Instagram posts. A first comment
(`publishers.comments`) goes to `POST /{ig-media-id}/comments` once the media is live.

Settings: as Facebook ("client_id", "client_secret", "dialog_url", "graph_url",
"version"), plus "refresh_margin_seconds", "media_poll_seconds", "media_wait_seconds".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from publishers import graph
from publishers.base import (
    Capabilities,
    Checkpoints,
    ConnectableAccount,
    Credentials,
    Media,
    OutboundPost,
    Profile,
    PublishResult,
    ResumablePublisher,
    ThreadPart,
)
from publishers.capabilities import INSTAGRAM
from publishers.comments import add_first_comment
from publishers.errors import AuthExpired, AuthRevoked, InvalidPost
from publishers.facebook import FacebookLoginMixin
from publishers.http import json_body
from publishers.oauth import expires_soon

# instagram_manage_comments: the account comments its own first comment (§6.2).
SCOPES = "instagram_basic,instagram_content_publish,instagram_manage_comments,pages_show_list,pages_read_engagement"
API = graph.ContainerApi(
    network="Instagram",
    create_path="media",
    publish_path="media_publish",
    status_field="status_code",
    error_field="status",
    quota_path="content_publishing_limit",
    list_path="media",
    text_field="caption",
)


class InstagramPublisher(FacebookLoginMixin, ResumablePublisher):
    """Instagram professional accounts. The Instagram user id travels in the credentials."""

    capabilities: ClassVar[Capabilities] = INSTAGRAM

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.use_facebook_login(settings, "Instagram", SCOPES)
        self._margin = graph.renewal_margin(settings)
        self.flow = graph.container_flow(self._http, API, settings)

    def validate(self, post: OutboundPost, limits: Mapping[str, int] | None = None) -> list[str]:
        problems = super().validate(post, limits)
        if len(post.attachments) == 1 and post.attachments[0].mime_type == "image/gif":
            problems.append("Instagram takes JPEG images, not GIFs.")
        return problems

    # -- connect ---------------------------------------------------------------------------------------------------

    def accounts(self, credentials: Credentials) -> list[ConnectableAccount]:
        """The Instagram professional account linked to each of the person's Pages."""
        found = []
        fields = "id,name,instagram_business_account{id,username,name}"
        for page in self.login.pages(credentials, fields):
            account = page.get("instagram_business_account")
            if not isinstance(account, dict) or not account.get("id"):
                continue
            ig_id, username = str(account["id"]), str(account.get("username") or account["id"])
            mine = Credentials(
                credentials.access_token,
                None,
                credentials.expires_at,
                {"ig_user_id": ig_id, "username": username},
            )
            profile = Profile(
                ig_id, username, str(account.get("name") or username), f"https://www.instagram.com/{username}"
            )
            found.append(ConnectableAccount(profile, mine, kind="Instagram account"))
        return found

    def refresh(self, credentials: Credentials) -> Credentials:
        """A new long-lived token from the current one (it must still be valid); a dead one means reconnect."""
        try:
            return self.login.long_lived(credentials)
        except (InvalidPost, AuthExpired, AuthRevoked):
            raise AuthRevoked("Instagram no longer accepts this connection. Reconnect the channel.") from None

    def profile(self, credentials: Credentials) -> Profile:
        ig_id = _ig_user(credentials)
        response = self._http.request(
            "GET", f"{self.login.graph}/{ig_id}", token=credentials.access_token, params={"fields": "id,username,name"}
        )
        body = json_body(response)
        body = body if isinstance(body, dict) else {}
        username = str(body.get("username") or ig_id)
        return Profile(ig_id, username, str(body.get("name") or username), f"https://www.instagram.com/{username}")

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish_resumable(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, checkpoints: Checkpoints
    ) -> PublishResult:
        if expires_soon(credentials, self._margin):
            raise AuthExpired("The Instagram token is about to expire; renewing it first.")
        ig_user, token = _ig_user(credentials), credentials.access_token
        resumed = checkpoints.get("media:0") is not None  # published by an earlier attempt, which may have commented
        result = self.flow.publish(self.login.graph, ig_user, post, credentials, checkpoints, _container, _child)
        return add_first_comment(
            result,
            post.first_comment,
            checkpoints,
            network="Instagram",
            send=lambda text: graph.send_comment(self._http, self.login.graph, token, result.remote_id, text),
            find=lambda text: graph.find_comment(
                self._http, self.login.graph, token, result.remote_id, text, ig_user, "text"
            ),
            resumed=resumed,
        )

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        media_id = self.flow.find_media(self.login.graph, _ig_user(credentials), credentials.access_token, post.text)
        if media_id is None:
            return None
        return PublishResult(media_id, self.flow.permalink(self.login.graph, credentials.access_token, media_id))


def _child(item: Media) -> dict[str, str]:
    url = graph.public_url(item, "Instagram")
    fields = {"is_carousel_item": "true"}
    return fields | ({"media_type": "VIDEO", "video_url": url} if item.is_video else {"image_url": url})


def _container(part: ThreadPart, reply_to: str | None, children: list[str]) -> dict[str, str]:
    if children:
        return {"media_type": "CAROUSEL", "children": ",".join(children), "caption": part.text}
    [item] = part.media
    url = graph.public_url(item, "Instagram")
    fields = {"caption": part.text}
    if item.is_video:
        return fields | {"media_type": "REELS", "video_url": url}
    return fields | {"image_url": url} | ({"alt_text": item.alt} if item.alt else {})


def _ig_user(credentials: Credentials) -> str:
    ig_id = credentials.extra.get("ig_user_id")
    if not ig_id:
        raise AuthRevoked("This Instagram connection does not name its account. Reconnect the channel.")
    return ig_id
