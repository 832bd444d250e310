"""Machinery the Meta fakes share (Facebook Pages, Instagram, Threads), per networks.md §5–§7.

- Graph error bodies: `{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}`.
- Tokens from `Authorization: Bearer`, or `access_token` in the query or form, as Graph accepts. An expired
  token answers 400 code 190 subcode 463; a revoked one code 190 subcode 460.
- Throttling as Meta does it: HTTP 400/403 with code 4 (app), 17, 32, 613 or 80001, and an
  `X-Business-Use-Case-Usage` header whose `estimated_time_to_regain_access` is in minutes (`throttle()`).
- An optional version prefix (`/v24.0/...`) on every path, as Graph takes.
- Facebook Login (`FacebookLoginFake`): `/dialog/oauth` auto-approves as `authorizing_user` and redirects with
  code and state; `/oauth/access_token` exchanges a code for a short-lived user token and `fb_exchange_token`
  for a 60-day one; `/me/accounts` lists the person's Pages.
- Containers (`ContainerFake`): create (media URLs are FETCHED over HTTP, as Meta does: unreachable → 2207052),
  status by the fake's clock (IN_PROGRESS until `processing_seconds` pass, then FINISHED; ERROR when a test
  says so), publish once (PUBLISHED; a second publish is refused), a per-account quota read from
  `<quota_path>` and enforced at publish, the account's posts listed newest first.

- Comments (`comment_route`): `POST /{post}/comments` with `message` → {"id"}; `GET /{post}/comments` lists them
  with `from.id`, the words under `comment_text_field`. Faults apply by path as everywhere.

Control routes shared by every Meta fake: POST throttle {"code", "minutes", "times", "status"},
POST containers/fail {"message"} (the next container ends in ERROR), POST tokens/expire {"access_token"},
POST tokens/revoke {"account_id"}, PUT quota {"total"}, POST clock {"advance_seconds"}.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from tests.fakes.network import iso
from tests.fakes.oauth import TokenStore
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response
from tests.fakes.standalone import FakeClock

CLIENT_ID, CLIENT_SECRET = "fake-meta-app", "fake-meta-secret"
_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")


def graph_error(
    status: int, message: str, code: int, subcode: int | None = None, *, transient: bool = False, **headers: str
) -> FakeResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": secrets.token_hex(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_response(status, {"error": error}, outcome="rejected", headers=headers)


@dataclasses.dataclass
class Throttle:
    code: int
    minutes: int
    times: int
    status: int


@dataclasses.dataclass
class Container:
    id: str
    owner: str
    fields: dict[str, str]
    created_at: datetime
    ready_at: datetime
    error: str | None = None
    media_id: str | None = None


@dataclasses.dataclass
class Published:
    id: str
    owner: str
    text: str
    container: str
    created_at: datetime
    reply_to: str | None = None
    deleted: bool = False


@dataclasses.dataclass
class Comment:
    id: str
    on: str  # the commented post's id
    author: str  # the commenting account (a Page id, an Instagram user id)
    text: str
    created_at: datetime


class FakeGraph(FakeServer):
    """A Graph host: tokens, errors, throttling, version prefixes. Subclasses add `route()`."""

    # How a comment's words are named: Facebook "message", Instagram "text" (both take `message` when created).
    comment_text_field: ClassVar[str] = "message"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.clock = FakeClock()
        self.tokens = TokenStore(self.clock, access_lifetime=timedelta(hours=1), rotate_refresh=False)
        self.throttles: list[Throttle] = []
        self._ids = itertools.count(17_895_695_668_004_001)
        self.comments: dict[str, Comment] = {}

    def comments_on(self, post_id: str | None = None) -> list[Comment]:
        """The comments made so far (under one post), oldest first."""
        with self.clock.lock:
            return [dataclasses.replace(c) for c in self.comments.values() if post_id in (None, c.on)]

    def comment_route(self, request: FakeRequest, post_id: str, author: str) -> FakeResponse:
        """`POST /{post}/comments` (message) → {"id"}; `GET /{post}/comments` → {"data": [...]}, oldest first."""
        if request.method == "POST":
            message = self.fields(request).get("message", "")
            if not message.strip():
                return graph_error(400, "(#100) The parameter message is required", 100)
            comment = Comment(f"{post_id}_{self.new_id()}", post_id, author, message, self.clock.now())
            self.comments[comment.id] = comment
            return json_response(200, {"id": comment.id}, outcome="committed", comment_id=comment.id)
        data = [
            {
                "id": c.id,
                self.comment_text_field: c.text,
                "from": {"id": c.author},
                "timestamp": iso(c.created_at).replace("Z", "+0000"),
            }
            for c in self.comments.values()
            if c.on == post_id
        ]
        return json_response(200, {"data": data[: int(request.query.get("limit") or 25)]})

    def new_id(self) -> str:
        return str(next(self._ids))

    def throttle(self, code: int, minutes: int = 10, times: int = 1, status: int = 400) -> None:
        with self.clock.lock:
            self.throttles.append(Throttle(code, minutes, times, status))

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = _VERSION.sub("", request.path).rstrip("/") or "/"
        with self.clock.lock:
            open_route = self.open_route(request, path)
            if open_route is not None:
                return open_route
            token = request.header("authorization").removeprefix("Bearer ") or request.query.get("access_token", "")
            if not token and "form" in request.header("content-type"):
                token = request.form().get("access_token", "")
            check, account = self.tokens.check(token)
            if check == "expired":
                return graph_error(400, "Error validating access token: Session has expired.", 190, 463)
            if check != "ok" or account is None:
                return graph_error(
                    400, "Error validating access token: The user has not authorized application.", 190, 460
                )
            if self.throttles:
                limit = self.throttles[0]
                limit.times -= 1
                if limit.times <= 0:
                    self.throttles.pop(0)
                usage = {
                    account: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": limit.minutes}]
                }
                return graph_error(
                    limit.status,
                    f"(#{limit.code}) Application request limit reached",
                    limit.code,
                    **{"X-Business-Use-Case-Usage": json.dumps(usage)},
                )
            return self.route(request, path, account)

    def open_route(self, request: FakeRequest, path: str) -> FakeResponse | None:
        """Routes that need no token (OAuth). None: not one of them."""
        return None

    def route(self, request: FakeRequest, path: str, account: str) -> FakeResponse:
        return graph_error(400, "Unsupported request", 100, 33)

    def fields(self, request: FakeRequest) -> dict[str, str]:
        """Graph takes parameters in the query or a form body alike."""
        form = request.form() if "x-www-form-urlencoded" in request.header("content-type") else {}
        return dict(request.query) | form

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "throttle"):
            self.throttle(
                int(payload["code"]),
                int(payload.get("minutes", 10)),
                int(payload.get("times", 1)),
                int(payload.get("status", 400)),
            )
            return json_response(200, payload)
        if route == ("POST", "tokens/expire"):
            with self.clock.lock:
                self.tokens.expire(payload["access_token"])
            return json_response(200, {"expired": True})
        if route == ("POST", "tokens/revoke"):
            with self.clock.lock:
                return json_response(200, {"revoked": self.tokens.revoke(payload["account_id"])})
        if route == ("POST", "clock"):
            self.clock.advance(timedelta(seconds=float(payload["advance_seconds"])))
            return json_response(200, {"now": iso(self.clock.now())})
        return None


class FacebookLoginFake(FakeGraph):
    """Facebook Login and `/me/accounts`: a person who manages Pages (each maybe linked to an Instagram account)."""

    page_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, authorizing_user: str = "demo") -> None:
        super().__init__(host=host, port=port)
        self.authorizing_user = authorizing_user
        self.people: dict[str, str] = {}  # person id -> name
        self.pages: dict[str, dict[str, Any]] = {}  # page id -> {"name", "admins", "token", "instagram"}

    def person(self, name: str) -> str:
        with self.clock.lock:
            found = next((i for i, n in self.people.items() if n == name), None)
            if found is None:
                found = self.new_id()
                self.people[found] = name
            return found

    def add_page(self, name: str, admin: str, instagram: str | None = None) -> str:
        """A Page managed by `admin`, with its own never-expiring Page token; `instagram` links a business account."""
        admin_id = self.person(admin)
        with self.clock.lock:
            page_id = self.new_id()
            token, _ = self.tokens.issue(page_id, with_refresh=False, lifetime=timedelta(days=36500))
            linked = {"id": self.new_id(), "username": instagram} if instagram else None
            self.pages[page_id] = {"name": name, "admins": [admin_id], "token": token, "instagram": linked}
            return page_id

    def user_token(self, name: str, lifetime: timedelta = timedelta(days=60)) -> str:
        person = self.person(name)
        with self.clock.lock:
            token, _ = self.tokens.issue(person, with_refresh=False, lifetime=lifetime)
            return token

    def open_route(self, request: FakeRequest, path: str) -> FakeResponse | None:
        query = request.query
        if path == "/dialog/oauth":
            if query.get("client_id") != CLIENT_ID or not query.get("redirect_uri"):
                return graph_error(400, "Invalid App ID", 101)
            code = self.tokens.new_code(CLIENT_ID, query["redirect_uri"], self.person(self.authorizing_user))
            location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            return FakeResponse(302, b"", headers={"Location": location}, outcome="committed")
        if path == "/oauth/access_token":
            if query.get("client_id") != CLIENT_ID or query.get("client_secret") != CLIENT_SECRET:
                return graph_error(400, "Error validating client secret.", 1)
            if query.get("grant_type") == "fb_exchange_token":
                check, person = self.tokens.check(query.get("fb_exchange_token", ""))
                if check != "ok" or person is None:
                    return graph_error(
                        400,
                        "Error validating access token: Session has expired.",
                        190,
                        463 if check == "expired" else 460,
                    )
                token, _ = self.tokens.issue(person, with_refresh=False, lifetime=timedelta(days=60))
            else:
                person = self.tokens.redeem(query.get("code", ""), CLIENT_ID, query.get("redirect_uri", ""))
                if person is None:
                    return graph_error(400, "Invalid verification code format.", 100, 36007)
                token, _ = self.tokens.issue(person, with_refresh=False)
            body = {"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in(token)}
            return json_response(200, body, outcome="committed")
        return None

    def my_pages(self, person: str) -> FakeResponse:
        data = []
        for page_id, page in self.pages.items():
            if person not in page["admins"]:
                continue
            item: dict[str, Any] = {"id": page_id, "name": page["name"], "access_token": page["token"]}
            item["tasks"] = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MODERATE", "MANAGE"]
            if page["instagram"]:
                item["instagram_business_account"] = dict(page["instagram"])
            data.append(item)
        return json_response(200, {"data": data, "paging": {}})


class ContainerFake(FakeGraph):
    """The container flow Instagram and Threads share; the subclass names the routes and fields."""

    create_path: ClassVar[str]
    publish_path: ClassVar[str]
    status_field: ClassVar[str]
    error_field: ClassVar[str]
    quota_path: ClassVar[str]
    list_path: ClassVar[str]
    text_field: ClassVar[str]
    quota_total: int = 50
    processing_seconds: float = 0.0
    video_processing_seconds: float = 0.2

    def setup_containers(self) -> None:
        self.containers: dict[str, Container] = {}
        self.published: dict[str, Published] = {}
        self.fail_next: str | None = None

    def posts(self, owner: str | None = None) -> list[Published]:
        with self.clock.lock:
            return [
                dataclasses.replace(p)
                for p in self.published.values()
                if not p.deleted and (owner is None or p.owner == owner)
            ]

    def may_act_for(self, account: str, owner: str) -> bool:
        return account == owner

    def container_route(self, request: FakeRequest, path: str, account: str) -> FakeResponse | None:
        parts = path.strip("/").split("/")
        method = request.method
        if len(parts) == 2 and not self.may_act_for(account, parts[0]):
            return graph_error(403, "(#10) The user must be an administrator of this account.", 10)
        if len(parts) == 2 and parts[1] == self.create_path and method == "POST":
            return self._create(parts[0], self.fields(request))
        if len(parts) == 2 and parts[1] == self.list_path and method == "GET":
            limit = int(request.query.get("limit") or 25)
            mine = sorted(
                (p for p in self.published.values() if p.owner == parts[0] and not p.deleted),
                key=lambda p: p.created_at,
                reverse=True,
            )
            data = [
                {"id": p.id, self.text_field: p.text, "timestamp": iso(p.created_at).replace("Z", "+0000")}
                for p in mine[:limit]
            ]
            return json_response(200, {"data": data})
        if len(parts) == 2 and parts[1] == self.publish_path and method == "POST":
            return self._publish(parts[0], self.fields(request).get("creation_id", ""))
        if len(parts) == 2 and parts[1] == self.quota_path and method == "GET":
            window = self.clock.now() - timedelta(hours=24)
            used = sum(
                1
                for p in self.published.values()
                if p.owner == parts[0] and p.created_at > window and p.reply_to is None
            )
            return json_response(
                200,
                {"data": [{"quota_usage": used, "config": {"quota_total": self.quota_total, "quota_duration": 86400}}]},
            )
        if len(parts) == 1 and parts[0] in self.containers and method == "GET":
            return json_response(200, self._status(self.containers[parts[0]]))
        if len(parts) == 1 and parts[0] in self.published and method == "GET":
            post = self.published[parts[0]]
            if post.deleted:
                return graph_error(400, "Unsupported get request. Object does not exist", 100, 33)
            return json_response(200, {"id": post.id, "permalink": f"{self.base_url}/p/{post.id}/"})
        if len(parts) == 1 and parts[0] in self.published and method == "DELETE":
            post = self.published[parts[0]]
            if post.deleted or post.owner != account:
                return graph_error(400, "Unsupported delete request.", 100, 33)
            post.deleted = True
            return json_response(200, {"success": True, "deleted_id": post.id}, outcome="committed")
        return None

    def validate_container(self, owner: str, fields: dict[str, str]) -> FakeResponse | None:
        return None

    def _create(self, owner: str, fields: dict[str, str]) -> FakeResponse:
        problem = self.validate_container(owner, fields)
        if problem is not None:
            return problem
        for key in ("image_url", "video_url"):
            if key in fields and not _fetchable(fields[key]):
                return graph_error(
                    400, "Media download has failed. The media URI doesn't meet our requirements.", 9004, 2207052
                )
        children = [c for c in fields.get("children", "").split(",") if c]
        if any(c not in self.containers or self.containers[c].owner != owner for c in children):
            return graph_error(400, "Invalid parameter: children", 100)
        now = self.clock.now()
        delay = self.video_processing_seconds if "video_url" in fields else self.processing_seconds
        container = Container(self.new_id(), owner, fields, now, now + timedelta(seconds=delay))
        if self.fail_next is not None:
            container.error, self.fail_next = self.fail_next, None
        self.containers[container.id] = container
        return json_response(200, {"id": container.id}, outcome="committed", container=container.id)

    def _state(self, container: Container) -> str:
        if container.media_id is not None:
            return "PUBLISHED"
        if container.error is not None:
            return "ERROR"
        if self.clock.now() - container.created_at > timedelta(hours=24):
            return "EXPIRED"
        return "FINISHED" if self.clock.now() >= container.ready_at else "IN_PROGRESS"

    def _status(self, container: Container) -> dict[str, Any]:
        body = {"id": container.id, self.status_field: self._state(container)}
        if container.error is not None:
            body[self.error_field] = container.error
        return body

    def _publish(self, owner: str, creation_id: str) -> FakeResponse:
        container = self.containers.get(creation_id)
        if container is None or container.owner != owner:
            return graph_error(400, "The requested resource does not exist", 24, 4279009)
        state = self._state(container)
        if state == "PUBLISHED":
            return graph_error(400, "The media has already been published", 100, 2207001)
        if state != "FINISHED":
            return graph_error(400, "Media ID is not available", 9007, 2207027)
        reply_to = container.fields.get("reply_to_id")
        window = self.clock.now() - timedelta(hours=24)
        used = sum(
            1 for p in self.published.values() if p.owner == owner and p.created_at > window and p.reply_to is None
        )
        if reply_to is None and used >= self.quota_total:
            return graph_error(400, "Application request limit reached", 9, 2207042)
        post = Published(
            self.new_id(), owner, container.fields.get(self.text_field, ""), container.id, self.clock.now(), reply_to
        )
        self.published[post.id] = post
        container.media_id = post.id
        return json_response(200, {"id": post.id}, outcome="committed", media_id=post.id)

    def container_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "containers/fail"):
            with self.clock.lock:
                self.fail_next = str(payload.get("message") or "ERROR")
            return json_response(200, payload)
        if route == ("PUT", "quota"):
            self.quota_total = int(payload["total"])
            return json_response(200, payload)
        return None

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        return self.container_control(request, name) or super().extra_control(request, name)


def _fetchable(url: str) -> bool:
    """Meta downloads the media itself: the URL must answer 200 with an image or video."""
    try:
        response = httpx.get(url, timeout=5, follow_redirects=True)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.headers.get("content-type", "").startswith(("image/", "video/"))


class MediaHost(FakeServer):
    """Public media for Meta to fetch (what a CDN or our media library serves): `add()` returns its URL."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.files: dict[str, tuple[bytes, str]] = {}

    def add(self, name: str, data: bytes, content_type: str) -> str:
        self.files[name] = (data, content_type)
        return f"{self.base_url}/media/{name}"

    def handle(self, request: FakeRequest) -> FakeResponse:
        found = self.files.get(request.path.removeprefix("/media/"))
        if found is None:
            return FakeResponse(404, b"Not found", headers={"Content-Type": "text/plain"}, outcome="rejected")
        return FakeResponse(200, found[0], headers={"Content-Type": found[1]})
