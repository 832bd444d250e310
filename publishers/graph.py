"""What Facebook Pages, Instagram and Threads share: Meta's Graph error format and the container publish flow.

Errors (networks.md §5.5): Meta throttles with error CODES inside HTTP 400/403,
rarely 429 — 4 (the whole app), 17/32/613/80000–80014 (the user, Page or
business use case) — and says when access returns in `X-Business-Use-Case-Usage`
(`estimated_time_to_regain_access`, minutes). 190 is a dead token (subcode 463:
expired, so refresh once); 1/2 or `is_transient` are temporary; 10 and 200–299
are missing permissions. Codes are parsed as integers, never found by substring
(a peer matched "490" inside an id).

Containers (§6.2, §7.2, §7.4): create a container → poll its status until
FINISHED → publish it once. The container id is stored (checkpoint) before it
is polled or published, so the next attempt after any failure reads that
container's status instead of making a second: PUBLISHED means the post is
live (its media id is found by reading the account's recent posts), FINISHED
means publish it now, EXPIRED means make a new one, ERROR fails the target with
Meta's reason. The publishing quota is read from the API before creating the
first container, never assumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from publishers.base import Checkpoints, Credentials, Media, OutboundPost, PublishResult, ThreadPart
from publishers.comments import same_text
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    InvalidPost,
    OutcomeUnknown,
    PublisherError,
    RateLimited,
    TransientError,
)
from publishers.http import HttpClient, json_body, parse_time

APP_THROTTLE = frozenset({4})
ACCOUNT_THROTTLE = frozenset({17, 32, 613, 341, *range(80000, 80015)})
DEFAULT_THROTTLE_WAIT = timedelta(hours=1)  # Meta names no reset without the BUC header; mixpost waits an hour
QUOTA_SUBCODE = 2207042  # Instagram: the daily publishing limit is reached
NOT_YET_VISIBLE = (24, 4279009)  # Threads: publish seconds after create can miss the container; safe to retry


def graph_error(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else int(value) if isinstance(value, str) and value.isdigit() else None


def regain_at(headers: httpx.Headers, now: datetime | None = None) -> datetime:
    """When Meta says access returns: the largest `estimated_time_to_regain_access` (minutes) in the BUC header."""
    now = now or datetime.now(UTC)
    minutes = 0
    try:
        usage = json.loads(headers.get("x-business-use-case-usage") or "{}")
    except ValueError:
        usage = {}
    for entries in usage.values() if isinstance(usage, dict) else []:
        for entry in entries if isinstance(entries, list) else []:
            value = _int(entry.get("estimated_time_to_regain_access")) if isinstance(entry, dict) else None
            minutes = max(minutes, value or 0)
    return now + (timedelta(minutes=minutes) if minutes else DEFAULT_THROTTLE_WAIT)


def classifier(network: str) -> Callable[[httpx.Response, str, bool], PublisherError | None]:
    """The Graph error sorter for one Meta network (its name goes into the messages)."""

    def classify(response: httpx.Response, reason: str, mutation: bool) -> PublisherError | None:
        error = graph_error(response)
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        status = response.status_code
        message = str(error.get("error_user_msg") or error.get("message") or reason)[:300]
        if code is None:
            return None
        if code in APP_THROTTLE or code in ACCOUNT_THROTTLE:
            reset = regain_at(response.headers)
            scope: Literal["channel", "app"] = "app" if code in APP_THROTTLE else "channel"
            who = f"Our {network} application is" if scope == "app" else "This account is"
            return RateLimited(
                f"{who} being throttled by {network} (code {code}); waiting until {reset:%H:%M} UTC.",
                reset_at=reset,
                scope=scope,
                http_status=status,
            )
        if subcode == QUOTA_SUBCODE:
            return RateLimited(
                f"{network}'s daily publishing limit for this account is reached; waiting for it to free up.",
                reset_at=datetime.now(UTC) + DEFAULT_THROTTLE_WAIT,
                http_status=status,
            )
        if code == 368:
            return RateLimited(
                f"{network} has temporarily blocked this account from posting: {message}",
                reset_at=datetime.now(UTC) + timedelta(hours=24),
                http_status=status,
            )
        if code == 190:
            if subcode == 463:
                return AuthExpired(f"The {network} access token expired.", http_status=status)
            return AuthRevoked(f"{network} no longer accepts this connection ({message}). Reconnect the channel.")
        if code == 10 or 200 <= code <= 299:
            return AuthRevoked(
                f"{network} refused: {message}. Reconnect the channel and grant the permissions asked for.",
                http_status=status,
            )
        if (code, subcode) == NOT_YET_VISIBLE:
            return TransientError(f"{network} has not made the post ready yet.", http_status=status)
        if code in (1, 2) or error.get("is_transient") is True:
            if mutation:
                return OutcomeUnknown(
                    f"{network} had a temporary error after receiving the post, so it may or may not be live.",
                    http_status=status,
                )
            return TransientError(f"{network} had a temporary error ({message}).", http_status=status)
        if code == 506:
            return InvalidPost(f"{network} refused the post as a duplicate of the one before it.", http_status=status)
        if 400 <= status < 500:
            return InvalidPost(f"{network} refused the post: {message}", http_status=status)
        return None

    return classify


@dataclass(frozen=True)
class ContainerApi:
    """How one network spells the container flow (Instagram and Threads differ only in names)."""

    network: str
    create_path: str  # "media" | "threads"
    publish_path: str  # "media_publish" | "threads_publish"
    status_field: str  # "status_code" | "status"
    error_field: str  # Instagram: "status" holds the subcode; Threads: "error_message"
    quota_path: str  # "content_publishing_limit" | "threads_publishing_limit"
    list_path: str  # the account's posts, for reading back a PUBLISHED container's media id
    text_field: str  # "caption" | "text"


def container_flow(http: HttpClient, api: ContainerApi, settings: Mapping[str, str]) -> ContainerFlow:
    """The flow with the adapter's polling settings ("media_poll_seconds", "media_wait_seconds")."""
    return ContainerFlow(
        http,
        api,
        poll_seconds=float(settings.get("media_poll_seconds") or 2.0),
        wait_seconds=float(settings.get("media_wait_seconds") or 60.0),
    )


def renewal_margin(settings: Mapping[str, str]) -> timedelta:
    """How long before a 60-day Meta token lapses it is renewed ("refresh_margin_seconds", default a week)."""
    return timedelta(seconds=float(settings.get("refresh_margin_seconds") or 7 * 86400))


class ContainerFlow:
    """The container state machine against one Graph host. Holds no per-call state."""

    def __init__(
        self, http: HttpClient, api: ContainerApi, *, poll_seconds: float, wait_seconds: float, publish_retries: int = 3
    ) -> None:
        self.http, self.api = http, api
        self.poll_seconds, self.wait_seconds, self.publish_retries = poll_seconds, wait_seconds, publish_retries

    def publish(
        self,
        base: str,
        user_id: str,
        post: OutboundPost,
        credentials: Credentials,
        checkpoints: Checkpoints,
        container_fields: Callable[[ThreadPart, str | None, list[str]], dict[str, str]],
        child_fields: Callable[[Media], dict[str, str]],
    ) -> PublishResult:
        """Each part through create → poll → publish, resuming from the checkpoints; the result names part 0."""
        token = credentials.access_token
        first: PublishResult | None = None
        previous: str | None = None
        for number, part in enumerate(post.parts):
            media_id = checkpoints.get(f"media:{number}")
            if media_id is None:
                media_id = self._publish_part(
                    base, user_id, token, number, part, previous, checkpoints, container_fields, child_fields
                )
                checkpoints.put(f"media:{number}", media_id)
            previous = media_id
            if first is None:
                first = PublishResult(media_id, self.permalink(base, token, media_id), datetime.now(UTC))
        assert first is not None
        return first

    def _publish_part(
        self,
        base: str,
        user_id: str,
        token: str,
        number: int,
        part: ThreadPart,
        reply_to: str | None,
        checkpoints: Checkpoints,
        container_fields: Callable[[ThreadPart, str | None, list[str]], dict[str, str]],
        child_fields: Callable[[Media], dict[str, str]],
    ) -> str:
        name = f"container:{number}"
        container = checkpoints.get(name)
        if container is not None:
            status, _ = self.status(base, token, container)
            if status == "PUBLISHED":
                # An earlier attempt published it and lost the answer: find its media id, never publish again.
                found = self.find_media(base, user_id, token, part.text)
                if found is None:
                    raise TransientError(f"{self.api.network} shows the post as published but has not listed it yet.")
                return found
            if status == "EXPIRED":
                container = None
        if container is None:
            if number == 0:
                self.check_quota(base, user_id, token)
            children = []
            if len(part.media) > 1:
                for index, item in enumerate(part.media):
                    child_name = f"child:{number}:{index}"
                    child = checkpoints.get(child_name) or self._create(base, user_id, token, child_fields(item))
                    checkpoints.put(child_name, child)
                    children.append(child)
                for child in children:
                    self.wait_until_finished(base, token, child)
            container = self._create(base, user_id, token, container_fields(part, reply_to, children))
            checkpoints.put(name, container)
        self.wait_until_finished(base, token, container)
        return self._publish_container(base, user_id, token, container)

    def _create(self, base: str, user_id: str, token: str, fields: dict[str, str]) -> str:
        """A container: nothing visible yet, so a lost answer costs an orphan that expires, never a post."""
        response = self.http.request("POST", f"{base}/{user_id}/{self.api.create_path}", token=token, data=fields)
        container = _object(response).get("id")
        if not container:
            raise TransientError(f"{self.api.network} answered the container creation unreadably.")
        return str(container)

    def status(self, base: str, token: str, container: str) -> tuple[str, str]:
        """The container's status and, when it is ERROR, Meta's reason. Read-only."""
        fields = f"{self.api.status_field},{self.api.error_field}"
        response = self.http.request("GET", f"{base}/{container}", token=token, params={"fields": fields})
        body = _object(response)
        return str(body.get(self.api.status_field) or ""), str(body.get(self.api.error_field) or "")

    def wait_until_finished(self, base: str, token: str, container: str) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            status, reason = self.status(base, token, container)
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status == "ERROR":
                raise InvalidPost(
                    f"{self.api.network} could not process the media: {reason or 'check its format and size'}."
                )
            if status == "EXPIRED":
                raise TransientError(f"The {self.api.network} container expired; a new one is made on the next try.")
            if time.monotonic() + self.poll_seconds > deadline:
                raise TransientError(f"{self.api.network} is still processing the media; trying again later.")
            time.sleep(self.poll_seconds)

    def _publish_container(self, base: str, user_id: str, token: str, container: str) -> str:
        """The one irreversible call. A container publishes once, so retrying the not-yet-visible race is safe."""
        for last in [False] * self.publish_retries + [True]:
            try:
                response = self.http.request(
                    "POST",
                    f"{base}/{user_id}/{self.api.publish_path}",
                    token=token,
                    mutation=True,
                    data={"creation_id": container},
                )
            except TransientError as exc:
                if last or exc.http_status is None:
                    raise
                time.sleep(self.poll_seconds)
                continue
            media_id = _object(response).get("id")
            if not media_id:
                raise OutcomeUnknown(f"{self.api.network} published but did not say which post it made.")
            return str(media_id)
        raise AssertionError("unreachable")

    def check_quota(self, base: str, user_id: str, token: str) -> None:
        """`RateLimited` until the rolling window frees a slot, if the quota (read from the API) is spent."""
        response = self.http.request(
            "GET", f"{base}/{user_id}/{self.api.quota_path}", token=token, params={"fields": "quota_usage,config"}
        )
        data = _object(response).get("data") or [{}]
        entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        config = entry.get("config") or {}
        used, total = _int(entry.get("quota_usage")), _int(config.get("quota_total"))
        window = timedelta(seconds=_int(config.get("quota_duration")) or 86400)
        if used is None or total is None or used < total:
            return
        reset = self._window_frees_at(base, user_id, token, window, total)
        raise RateLimited(
            f"{self.api.network} allows {total} posts per {window.total_seconds() / 3600:g} hours and this account "
            f"has used them all; the post waits until {reset:%Y-%m-%d %H:%M} UTC, when one frees up.",
            reset_at=reset,
            http_status=None,
        )

    def _window_frees_at(self, base: str, user_id: str, token: str, window: timedelta, total: int) -> datetime:
        """When the oldest post inside the rolling window leaves it (an hour from now if the list says nothing)."""
        now = datetime.now(UTC)
        times = [t for t in (parse_time(i.get("timestamp")) for i in self._recent(base, user_id, token, total)) if t]
        inside = sorted(t for t in times if t > now - window)
        return inside[0] + window if inside else now + DEFAULT_THROTTLE_WAIT

    def find_media(self, base: str, user_id: str, token: str, text: str) -> str | None:
        wanted = " ".join(text.split())
        for item in self._recent(base, user_id, token, 25):
            if " ".join(str(item.get(self.api.text_field) or "").split()) == wanted and item.get("id"):
                return str(item["id"])
        return None

    def _recent(self, base: str, user_id: str, token: str, limit: int) -> list[dict[str, Any]]:
        response = self.http.request(
            "GET",
            f"{base}/{user_id}/{self.api.list_path}",
            token=token,
            params={"fields": f"id,{self.api.text_field},timestamp", "limit": str(limit)},
        )
        data = _object(response).get("data")
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def permalink(self, base: str, token: str, media_id: str) -> str | None:
        """Best effort: Meta sometimes refuses reads right after a publish (code 100/33), and the post is live."""
        try:
            response = self.http.request("GET", f"{base}/{media_id}", token=token, params={"fields": "permalink"})
        except PublisherError:
            return None
        link = _object(response).get("permalink")
        return str(link) if link else None


def send_comment(http: HttpClient, base: str, token: str, object_id: str, text: str) -> str:
    """Comment on a post as the token's account (`POST /{id}/comments` with `message`); the comment's id."""
    response = http.request("POST", f"{base}/{object_id}/comments", token=token, mutation=True, data={"message": text})
    comment = _object(response).get("id")
    if not comment:
        raise OutcomeUnknown(f"{http.network} took the comment but did not say which comment it made.")
    return str(comment)


def find_comment(
    http: HttpClient, base: str, token: str, object_id: str, text: str, author_id: str, text_field: str
) -> str | None:
    """Our comment with this text under a post, read back (`GET /{id}/comments`); None if it is not there.

    Facebook names a comment's words `message`, Instagram `text`; both name the commenter in `from`.
    """
    response = http.request(
        "GET",
        f"{base}/{object_id}/comments",
        token=token,
        params={"fields": f"id,{text_field},from", "limit": "50"},
    )
    data = _object(response).get("data")
    for item in data if isinstance(data, list) else []:
        author = item.get("from") if isinstance(item, dict) else None
        if (
            isinstance(author, dict)
            and str(author.get("id")) == author_id
            and same_text(str(item.get(text_field) or ""), text)
            and item.get("id")
        ):
            return str(item["id"])
    return None


def _object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def public_url(item: Media, network: str) -> str:
    """Meta fetches media itself from a public URL: a local file without one cannot be posted."""
    address = item.public_url or item.source
    if not address.startswith(("https://", "http://")):
        raise InvalidPost(f"{network} fetches media from a public web address; {address!r} is not one.")
    return address
