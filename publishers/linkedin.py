"""LinkedIn Posts API over plain HTTP, per networks.md §4: members and the organizations they administer.

Connect: OAuth 2.0 authorization code with `state` (LinkedIn offers PKCE to
native clients only; a web app authenticates with its client secret). Scopes:
`openid profile w_member_social` for the member, plus `w_organization_social
rw_organization_admin` to list and post as the Pages they administer; one login
may grant several targets, and the person picks which become channels
(`accounts`). Tokens last about 60 days; a refresh token exists only for
approved partners, so `refresh` uses it when present and otherwise asks for a
reconnect before the token lapses.

Every /rest call sends `LinkedIn-Version` from settings ("version", YYYYMM):
LinkedIn sunsets versions after about a year (426 NONEXISTENT_VERSION), and
that must be a configuration change, not a release.

Idempotency: none, but a 422 DUPLICATE_POST names the earlier identical post
(`DuplicatePost.existing_id`). After an unknown outcome the pipeline publishes
again and adopts that post: proof the earlier attempt landed. Outside that case
a duplicate is refused like any invalid post (it may be a genuinely old post).

Text uses "little text": reserved characters are backslash-escaped. Images:
initializeUpload → PUT the bytes → the post names the image URN (1 image as
`media`, 2..20 as `multiImage`). Delete: DELETE /rest/posts/{urn}.

First comment (`publishers.comments`): POST /rest/socialActions/{urn}/comments
as the author once the post is live. The comment's text is sent as typed: whether
comments need little-text escaping like commentary is unverified (§4.2).

Settings: "client_id", "client_secret", "authorize_url", "token_url",
"api_url" (https://api.linkedin.com), "version", "post_url", "refresh_margin_seconds" (a day: partner
apps with a refresh token renew that long before the token lapses), "timeout_seconds".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from publishers import media as media_files
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
)
from publishers.capabilities import LINKEDIN
from publishers.comments import add_first_comment, same_text
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    ConnectFailed,
    DuplicatePost,
    InvalidPost,
    OutcomeUnknown,
    PublisherError,
    RateLimited,
    TransientError,
)
from publishers.http import HttpClient, json_body, timeout_from
from publishers.oauth import client_fields, expires_soon, token_credentials

DEFAULT_VERSION = "202601"
SCOPES = "openid profile w_member_social w_organization_social rw_organization_admin"
_DUPLICATE_URN = re.compile(r"urn:li:(?:share|ugcPost|activity):\d+")
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")


def little_text(text: str) -> str:
    """Commentary as LinkedIn's "little text" needs it: reserved characters escaped, or the post is cut short."""
    return _RESERVED.sub(r"\\\1", text)


def _next_utc_midnight() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def _classify(response: httpx.Response, reason: str, mutation: bool) -> PublisherError | None:
    status = response.status_code
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    code = str(body.get("code") or "")
    service_code = body.get("serviceErrorCode")
    if status == 401:
        if code == "EXPIRED_ACCESS_TOKEN" or "expired" in reason.lower():
            return AuthExpired("The LinkedIn access token expired.", http_status=status)
        return AuthRevoked(f"LinkedIn no longer accepts this connection ({reason}). Reconnect the channel.")
    if status == 403:
        return AuthRevoked(
            f"LinkedIn refused: {reason}. Reconnect with an account that may post here.", http_status=status
        )
    if status == 422:
        details = (body.get("errorDetails") or {}).get("inputErrors") or []
        if any(isinstance(d, dict) and d.get("code") == "DUPLICATE_POST" for d in details):
            found = _DUPLICATE_URN.search(str(body.get("message") or ""))
            if found:
                return DuplicatePost(
                    "LinkedIn refused the post: the account already has a post with this exact text.",
                    existing_id=found.group(),
                    http_status=status,
                )
    if status == 426:
        # A sunset API version: our configuration is wrong, not the post. Retried, so a config fix rescues it.
        return TransientError(
            f"LinkedIn no longer accepts our API version ({reason}); LINKEDIN_VERSION must be updated.",
            http_status=status,
        )
    if status == 429:
        reset = _next_utc_midnight()  # LinkedIn's quotas are daily and send no reset header (§4.3)
        return RateLimited(f"LinkedIn's daily limit is reached; waiting until {reset:%H:%M} UTC.", reset_at=reset)
    if service_code is not None and status == 400:
        return InvalidPost(f"LinkedIn refused the post: {reason}", http_status=status)
    return None


class LinkedInPublisher(ResumablePublisher):
    """LinkedIn. Thread-safe: one instance serves every channel; the author URN travels in the credentials."""

    capabilities: ClassVar[Capabilities] = LINKEDIN

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self._api = (settings.get("api_url") or "https://api.linkedin.com").rstrip("/")
        self._http = HttpClient(network="LinkedIn", timeout=timeout_from(settings), classify=_classify)
        self._margin = timedelta(seconds=float(settings.get("refresh_margin_seconds") or 86400))

    def close(self) -> None:
        self._http.close()

    @property
    def version(self) -> str:
        return self.settings.get("version") or DEFAULT_VERSION

    def validate(self, post: OutboundPost, limits: Mapping[str, int] | None = None) -> list[str]:
        problems = super().validate(post, limits)
        if any(item.is_video for item in post.attachments):
            problems.append("LinkedIn video is not supported yet: attach images.")
        return problems

    # -- connect ---------------------------------------------------------------------------------------------------

    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        params = {
            "response_type": "code",
            "client_id": self.settings.get("client_id") or "",
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": SCOPES,
        }
        base = self.settings.get("authorize_url") or "https://www.linkedin.com/oauth/v2/authorization"
        return f"{base}?{urlencode(params)}"

    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None) -> Credentials:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri} | self._client()
        try:
            return self._token(form, keep_refresh=None)
        except PublisherError as exc:
            raise ConnectFailed(f"LinkedIn refused the sign-in ({exc.message}).", http_status=exc.http_status) from None

    def refresh(self, credentials: Credentials) -> Credentials:
        """A new token from the refresh token (partner apps only); without one the member must reconnect."""
        if not credentials.refresh_token:
            raise AuthRevoked("LinkedIn connections last 60 days without renewal. Reconnect the channel.")
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token} | self._client()
        try:
            fresh = self._token(form, keep_refresh=credentials.refresh_token)
        except (InvalidPost, AuthExpired, AuthRevoked) as exc:
            raise AuthRevoked("LinkedIn no longer accepts this connection. Reconnect the channel.") from exc
        return Credentials(fresh.access_token, fresh.refresh_token, fresh.expires_at, credentials.extra)

    def profile(self, credentials: Credentials) -> Profile:
        return (
            self.accounts(credentials)[0].profile
            if "author" not in credentials.extra
            else self._profile_of(credentials)
        )

    def accounts(self, credentials: Credentials) -> list[ConnectableAccount]:
        """The member, then each organization they administer (read-only calls)."""
        member = self._json("GET", f"{self._api}/v2/userinfo", credentials)
        if not member.get("sub"):
            raise ConnectFailed("LinkedIn answered with a member we could not read.")
        name = str(member.get("name") or member["sub"])
        author = f"urn:li:person:{member['sub']}"
        found = [
            ConnectableAccount(
                Profile(author, name, name, f"{self._post_url}/in/{member['sub']}"),
                _with_author(credentials, author, name),
                kind="member",
            )
        ]
        acls = self._json(
            "GET",
            f"{self._api}/rest/organizationAcls",
            credentials,
            params={"q": "roleAssignee", "role": "ADMINISTRATOR", "state": "APPROVED"},
        )
        for element in acls.get("elements") or []:
            urn = str(element.get("organization") or "") if isinstance(element, dict) else ""
            if not urn.startswith("urn:li:organization:"):
                continue
            org = self._json("GET", f"{self._api}/rest/organizations/{urn.rsplit(':', 1)[-1]}", credentials)
            org_name = str(org.get("localizedName") or urn)
            vanity = str(org.get("vanityName") or urn.rsplit(":", 1)[-1])
            found.append(
                ConnectableAccount(
                    Profile(urn, vanity, org_name, f"{self._post_url}/company/{vanity}"),
                    _with_author(credentials, urn, org_name),
                    kind="organization",
                )
            )
        return found

    # -- publish ---------------------------------------------------------------------------------------------------

    def publish_resumable(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, checkpoints: Checkpoints
    ) -> PublishResult:
        """Create the post, then its first comment. A 422 DUPLICATE_POST raises `DuplicatePost` naming the earlier
        post. The checkpoints only remember the first comment: the post itself is recovered by the duplicate error."""
        if credentials.refresh_token and expires_soon(credentials, self._margin):
            raise AuthExpired("The LinkedIn access token is about to expire; refreshing it first.")
        author = _author(credentials)
        body: dict[str, Any] = {
            "author": author,
            "commentary": little_text(post.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        images = [{"id": self._upload(credentials, author, item), "altText": item.alt} for item in post.attachments]
        if len(images) == 1:
            body["content"] = {"media": images[0]}
        elif images:
            body["content"] = {"multiImage": {"images": images}}
        try:
            response = self._http.request(
                "POST",
                f"{self._api}/rest/posts",
                token=credentials.access_token,
                mutation=True,
                headers=self._headers(),
                json=body,
            )
        except DuplicatePost as exc:
            existing = self.result_for(exc.existing_id)
            raise DuplicatePost(
                exc.message,
                existing_id=existing.remote_id,
                existing_url=existing.url,
                existing_at=self._created_at(credentials, exc.existing_id),
                http_status=exc.http_status,
            ) from None
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise TransientError("LinkedIn accepted a post but its answer did not say which post it made.")
        return add_first_comment(
            self.result_for(urn),
            post.first_comment,
            checkpoints,
            network="LinkedIn",
            send=lambda text: self._comment(credentials, author, urn, text),
            find=lambda text: self._find_comment(credentials, author, urn, text),
        )

    def _comment(self, credentials: Credentials, author: str, urn: str, text: str) -> str:
        """Comment as the post's author (`POST /rest/socialActions/{urn}/comments`); the comment's id."""
        response = self._http.request(
            "POST",
            f"{self._api}/rest/socialActions/{quote(urn, safe='')}/comments",
            token=credentials.access_token,
            mutation=True,
            headers=self._headers(),
            json={"actor": author, "object": urn, "message": {"text": text}},
        )
        body = json_body(response)
        comment = response.headers.get("x-restli-id") or (body.get("id") if isinstance(body, dict) else None)
        if not comment:
            raise OutcomeUnknown("LinkedIn took the comment but did not say which comment it made.")
        return str(comment)

    def _find_comment(self, credentials: Credentials, author: str, urn: str, text: str) -> str | None:
        """Our comment with this text under the post, read back; None if it is not there."""
        listed = self._json("GET", f"{self._api}/rest/socialActions/{quote(urn, safe='')}/comments", credentials)
        for item in listed.get("elements") or []:
            words = (item.get("message") or {}).get("text") if isinstance(item, dict) else None
            if item.get("actor") == author and isinstance(words, str) and same_text(words, text) and item.get("id"):
                return str(item["id"])
        return None

    def result_for(self, urn: str) -> PublishResult:
        return PublishResult(urn, f"{self._post_url}/feed/update/{urn}", datetime.now(UTC))

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """Read back the author's recent posts for this text (the duplicate error usually decides first)."""
        listed = self._json(
            "GET",
            f"{self._api}/rest/posts",
            credentials,
            params={"q": "author", "author": _author(credentials), "count": "20"},
        )
        wanted = little_text(post.text)
        for item in listed.get("elements") or []:
            created = item.get("createdAt") if isinstance(item, dict) else None
            if (
                isinstance(created, int)
                and datetime.fromtimestamp(created / 1000, UTC) >= since
                and item.get("commentary") == wanted
            ):
                return self.result_for(str(item["id"]))
        return None

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        try:
            self._http.request(
                "DELETE",
                f"{self._api}/rest/posts/{quote(remote_id, safe='')}",
                token=credentials.access_token,
                headers=self._headers(),
            )
        except InvalidPost as exc:
            if exc.http_status != 404:
                raise

    # -- pieces ----------------------------------------------------------------------------------------------------

    @property
    def _post_url(self) -> str:
        return (self.settings.get("post_url") or "https://www.linkedin.com").rstrip("/")

    def _client(self) -> dict[str, str]:
        return client_fields(self.settings)

    def _headers(self) -> dict[str, str]:
        return {"LinkedIn-Version": self.version, "X-Restli-Protocol-Version": "2.0.0"}

    def _token(self, form: dict[str, str], keep_refresh: str | None) -> Credentials:
        url = self.settings.get("token_url") or "https://www.linkedin.com/oauth/v2/accessToken"
        response = self._http.request("POST", url, data=form)
        return token_credentials(json_body(response), network="LinkedIn", keep_refresh=keep_refresh)

    def _json(self, method: str, url: str, credentials: Credentials, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, url, token=credentials.access_token, headers=self._headers(), **kwargs)
        body = json_body(response)
        return body if isinstance(body, dict) else {}

    def _profile_of(self, credentials: Credentials) -> Profile:
        author = credentials.extra["author"]
        for account in self.accounts(credentials):
            if account.profile.remote_id == author:
                return account.profile
        raise AuthRevoked("This LinkedIn login may no longer post as this account. Reconnect the channel.")

    def _created_at(self, credentials: Credentials, urn: str) -> datetime | None:
        """When a post was made (read-only, best effort: None when LinkedIn will not say)."""
        try:
            body = self._json("GET", f"{self._api}/rest/posts/{quote(urn, safe='')}", credentials)
        except PublisherError:
            return None
        created = body.get("createdAt")
        return datetime.fromtimestamp(created / 1000, UTC) if isinstance(created, int) else None

    def _upload(self, credentials: Credentials, author: str, item: Media) -> str:
        """initializeUpload, then PUT the bytes: nothing visible is created, so this is safe to redo."""
        if item.is_video:
            raise InvalidPost("LinkedIn video is not supported yet: attach images.")
        loaded = media_files.load(item, self._http, max_bytes=self.capabilities.max_image_bytes)
        started = self._json(
            "POST",
            f"{self._api}/rest/images",
            credentials,
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": author}},
        )
        value = started.get("value") or {}
        if not value.get("uploadUrl") or not value.get("image"):
            raise TransientError("LinkedIn answered the image upload unreadably.")
        self._http.request(
            "PUT",
            str(value["uploadUrl"]),
            token=credentials.access_token,
            headers={"Content-Type": loaded.mime_type},
            content=loaded.data,
        )
        return str(value["image"])


def _with_author(credentials: Credentials, author: str, name: str) -> Credentials:
    return Credentials(
        credentials.access_token,
        credentials.refresh_token,
        credentials.expires_at,
        dict(credentials.extra) | {"author": author, "name": name},
    )


def _author(credentials: Credentials) -> str:
    author = credentials.extra.get("author")
    if not author:
        raise AuthRevoked("This LinkedIn connection does not say whom it posts as. Reconnect the channel.")
    return author
