"""FakeLinkedIn: the OAuth and Posts API routes the adapter calls, in memory over real HTTP, per networks.md §4.

    GET  /oauth/v2/authorization     auto-approves as `authorizing_member`: 302 redirect_uri?code&state
    POST /oauth/v2/accessToken       form client_id/client_secret; authorization_code | refresh_token (only when the
                                     fake is built with `refresh_tokens=True`: partner apps); 60-day access tokens
    GET  /v2/userinfo                {sub, name}
    GET  /rest/organizationAcls?q=roleAssignee      the organizations the member administers
    GET  /rest/organizations/:id
    POST /rest/images?action=initializeUpload       → uploadUrl (PUT the bytes there) and the image URN
    PUT  /dms-uploads/:id
    POST /rest/posts                 201, EMPTY body, `x-restli-id: urn:li:share:N`; identical commentary by the same
                                     author → 422 DUPLICATE_POST naming the earlier URN; > 3000 chars → 422
    GET  /rest/posts?q=author&author=    GET /rest/posts/:urn  (createdAt in epoch milliseconds)
    DELETE /rest/posts/:urn          204
    POST /rest/socialActions/:urn/comments   {"actor", "object": urn, "message": {"text"}} → 201, the comment and
                                     `x-restli-id: <comment id>` (the actor must be one the token may post as, else
                                     403 ACCESS_DENIED); GET lists {"elements": [{id, actor, message: {text}}]}

Every /rest call must send `LinkedIn-Version` (a known one, else 426 NONEXISTENT_VERSION) and
`X-Restli-Protocol-Version: 2.0.0`. Errors carry `serviceErrorCode`: expired token → 401 EXPIRED_ACCESS_TOKEN,
revoked → 401 65601 REVOKED_ACCESS_TOKEN. Over the daily limit: 429 with no reset header.

Control: POST accounts {"handle"}, POST organizations {"name", "admins": [handle]}, POST tokens/revoke {"handle"},
PUT daily_limit {"limit"}, GET posts. Standalone: `python -m tests.fakes.linkedin --port 0 --demo-user demo`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from tests.fakes.network import RateLimit
from tests.fakes.oauth import TokenStore
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped
from tests.fakes.standalone import FakeClock, RateWindows

CLIENT_ID, CLIENT_SECRET = "fake-linkedin-client", "fake-linkedin-secret"
VERSIONS = frozenset({"202601", "202602", "202603"})


@dataclasses.dataclass
class LinkedInPost:
    urn: str
    author: str
    commentary: str
    images: list[str]
    created_at: datetime
    deleted: bool = False


@dataclasses.dataclass
class LinkedInComment:
    id: str
    object: str  # the post's URN
    actor: str
    text: str
    created_at: datetime


def _error(status: int, message: str, code: str | None = None, service: int | None = None) -> FakeResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service:
        body["serviceErrorCode"] = service
    return json_response(status, body, outcome="rejected")


class FakeLinkedIn(FakeServer):
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, authorizing_member: str = "demo", refresh_tokens: bool = False
    ) -> None:
        super().__init__(host=host, port=port)
        self.clock = FakeClock()
        self.tokens = TokenStore(self.clock, access_lifetime=timedelta(days=60), rotate_refresh=False)
        self.refresh_tokens = refresh_tokens
        self.authorizing_member = authorizing_member
        self.daily = RateWindows(RateLimit(150, timedelta(hours=24)))
        self.members: dict[str, str] = {}  # sub -> name
        self.organizations: dict[str, tuple[str, list[str]]] = {}  # id -> (name, admin subs)
        self.images: dict[str, bool] = {}  # urn -> uploaded
        self.posts_by_urn: dict[str, LinkedInPost] = {}
        self.comments: dict[str, LinkedInComment] = {}
        self._ids = itertools.count(7_141_138_937_766_391_001)

    # -- test helpers ------------------------------------------------------------------------------------------------

    def add_member(self, handle: str) -> tuple[str, str]:
        """(member sub, access token)."""
        with self.clock.lock:
            sub = self._member(handle)
            access, _ = self.tokens.issue(sub, with_refresh=False)
            return sub, access

    def add_organization(self, name: str, admins: list[str]) -> str:
        with self.clock.lock:
            org_id = str(next(self._ids) % 100_000_000)
            self.organizations[org_id] = (name, [self._member(a) for a in admins])
            return org_id

    def revoke_member(self, handle: str) -> None:
        with self.clock.lock:
            self.tokens.revoke(self._member(handle))

    def posts(self) -> list[LinkedInPost]:
        with self.clock.lock:
            return [dataclasses.replace(p) for p in self.posts_by_urn.values() if not p.deleted]

    # -- protocol ----------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/")
        with self.clock.lock:
            if path == "/oauth/v2/authorization":
                return self._authorize(request)
            if path == "/oauth/v2/accessToken" and request.method == "POST":
                return self._token(request)
            check, sub = self.tokens.check(request.header("authorization").removeprefix("Bearer "))
            if check == "expired":
                return _error(401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN", 65600)
            if check != "ok" or sub is None:
                return _error(
                    401, "The token used in the request has been revoked by the user", "REVOKED_ACCESS_TOKEN", 65601
                )
            if path == "/v2/userinfo":
                return json_response(200, {"sub": sub, "name": self.members[sub], "email_verified": True})
            if path.startswith("/dms-uploads/") and request.method == "PUT":
                urn = unquote(path.removeprefix("/dms-uploads/"))
                if urn not in self.images:
                    return _error(404, "Upload not found")
                self.images[urn] = True
                return FakeResponse(201, b"", outcome="committed")
            if path.startswith("/rest/"):
                version = request.header("linkedin-version")
                if version not in VERSIONS:
                    return _error(426, f"Requested version {version} is not active", "NONEXISTENT_VERSION")
                if request.header("x-restli-protocol-version") != "2.0.0":
                    return _error(400, "X-Restli-Protocol-Version 2.0.0 is required")
                return self._rest(request, path, sub)
        return _error(404, "Not found")

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return _error(400, "invalid_request")
        code = self.tokens.new_code(CLIENT_ID, q["redirect_uri"], self._member(self.authorizing_member))
        location = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        return FakeResponse(302, b"", headers={"Location": location}, outcome="committed")

    def _token(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        invalid = json_response(
            400,
            {"error": "invalid_request", "error_description": "Unable to retrieve access token"},
            outcome="rejected",
        )
        if form.get("grant_type") == "authorization_code":
            sub = self.tokens.redeem(form.get("code", ""), CLIENT_ID, form.get("redirect_uri", ""))
            if sub is None:
                return invalid
            access, refresh = self.tokens.issue(sub, with_refresh=self.refresh_tokens)
        elif form.get("grant_type") == "refresh_token" and self.refresh_tokens:
            issued = self.tokens.use_refresh(form.get("refresh_token", ""))
            if issued is None:
                return invalid
            access, refresh = issued
        else:
            return invalid
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.tokens.expires_in(access),
            "scope": "w_member_social",
        }
        if refresh:
            body |= {"refresh_token": refresh, "refresh_token_expires_in": 31_536_000}
        return json_response(200, body, outcome="committed")

    def _rest(self, request: FakeRequest, path: str, sub: str) -> FakeResponse:
        method = request.method
        if path == "/rest/organizationAcls":
            elements = [
                {"organization": f"urn:li:organization:{org_id}", "role": "ADMINISTRATOR", "state": "APPROVED"}
                for org_id, (_, admins) in self.organizations.items()
                if sub in admins
            ]
            return json_response(200, {"elements": elements})
        if path.startswith("/rest/organizations/"):
            org = self.organizations.get(path.rsplit("/", 1)[-1])
            if org is None:
                return _error(404, "Organization not found")
            return json_response(200, {"localizedName": org[0], "vanityName": org[0].lower().replace(" ", "-")})
        if path == "/rest/images" and method == "POST" and request.query.get("action") == "initializeUpload":
            urn = f"urn:li:image:C4E{next(self._ids)}"
            self.images[urn] = False
            value = {"uploadUrl": f"{self.base_url}/dms-uploads/{urn}", "image": urn, "uploadUrlExpiresAt": 0}
            return json_response(200, {"value": value}, outcome="committed")
        if path == "/rest/posts" and method == "POST":
            return self._create(request, sub)
        if path == "/rest/posts" and method == "GET":
            author = request.query.get("author", "")
            mine = [p for p in self.posts_by_urn.values() if p.author == author and not p.deleted]
            elements = [
                {
                    "id": p.urn,
                    "author": p.author,
                    "commentary": p.commentary,
                    "createdAt": int(p.created_at.timestamp() * 1000),
                }
                for p in sorted(mine, key=lambda p: p.created_at, reverse=True)
            ]
            return json_response(200, {"elements": elements})
        if path.startswith("/rest/posts/") and method == "GET":
            post = self.posts_by_urn.get(unquote(path.removeprefix("/rest/posts/")))
            if post is None or post.deleted:
                return _error(404, "Not found")
            created = int(post.created_at.timestamp() * 1000)
            return json_response(
                200, {"id": post.urn, "author": post.author, "commentary": post.commentary, "createdAt": created}
            )
        if path.startswith("/rest/posts/") and method == "DELETE":
            post = self.posts_by_urn.get(unquote(path.removeprefix("/rest/posts/")))
            if post is None or post.deleted:
                return _error(404, "Not found")
            post.deleted = True
            return FakeResponse(204, b"", outcome="committed")
        if path.startswith("/rest/socialActions/") and path.endswith("/comments"):
            return self._comments(
                request, unquote(path.removeprefix("/rest/socialActions/").removesuffix("/comments")), sub
            )
        return _error(404, f"No route {method} {path}")

    def _comments(self, request: FakeRequest, urn: str, sub: str) -> FakeResponse:
        post = self.posts_by_urn.get(urn)
        if post is None or post.deleted:
            return _error(404, f"Post {urn} does not exist", service=100)
        if request.method == "GET":
            elements = [
                {
                    "id": c.id,
                    "commentUrn": f"urn:li:comment:({urn},{c.id})",
                    "actor": c.actor,
                    "object": urn,
                    "message": {"text": c.text},
                    "created": {"time": int(c.created_at.timestamp() * 1000), "actor": c.actor},
                }
                for c in self.comments.values()
                if c.object == urn
            ]
            return json_response(200, {"elements": elements, "paging": {"count": 10, "start": 0}})
        if request.method != "POST":
            return _error(405, "Method not allowed")
        body = request.json()
        actor, text = str(body.get("actor") or ""), str((body.get("message") or {}).get("text") or "")
        if not self._may_post_as(sub, actor):
            return _error(
                403, "Not enough permissions to access: socialActions.comments.CREATE.20260101", "ACCESS_DENIED", 100
            )
        if body.get("object") != urn or not text.strip():
            return _error(400, "Comment must name the post as its object and have message text", service=100)
        comment = LinkedInComment(str(next(self._ids)), urn, actor, text, self.clock.now())
        self.comments[comment.id] = comment
        created = {"id": comment.id, "actor": actor, "object": urn, "message": {"text": text}}
        return json_response(
            201, created, outcome="committed", headers={"x-restli-id": comment.id}, comment_id=comment.id
        )

    def comments_on(self, urn: str | None = None) -> list[LinkedInComment]:
        with self.clock.lock:
            return [dataclasses.replace(c) for c in self.comments.values() if urn in (None, c.object)]

    def _may_post_as(self, sub: str, author: str) -> bool:
        if author == f"urn:li:person:{sub}":
            return True
        org = self.organizations.get(author.removeprefix("urn:li:organization:"))
        return org is not None and sub in org[1]

    def _create(self, request: FakeRequest, sub: str) -> FakeResponse:
        if not self.daily.consume(sub, self.clock.now()).allowed:
            return _error(429, "Resource level throttle DAY limit for calls to this resource is reached.")
        body = request.json()
        author, commentary = str(body.get("author") or ""), str(body.get("commentary") or "")
        if not self._may_post_as(sub, author):
            return _error(
                403, "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260101", "ACCESS_DENIED", 100
            )
        if len(commentary) > 3000:
            return _error(422, "commentary is too long (maximum 3000 characters)", service=100)
        content = body.get("content") or {}
        images = (
            [content["media"]["id"]]
            if "media" in content
            else [i["id"] for i in (content.get("multiImage") or {}).get("images", [])]
        )
        if any(not self.images.get(i) for i in images):
            return _error(422, "Image is not uploaded", service=100)
        earlier = next(
            (
                p
                for p in self.posts_by_urn.values()
                if p.author == author and p.commentary == commentary and not p.deleted
            ),
            None,
        )
        if earlier is not None:
            body422 = {
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                f"Content is a duplicate of {earlier.urn}",
                "errorDetails": {
                    "inputErrors": [
                        {"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}
                    ]
                },
                "status": 422,
            }
            return json_response(422, body422, outcome="rejected")
        post = LinkedInPost(f"urn:li:share:{next(self._ids)}", author, commentary, images, self.clock.now())
        self.posts_by_urn[post.urn] = post
        return FakeResponse(201, b"", headers={"x-restli-id": post.urn}, outcome="committed", details={"urn": post.urn})

    def _member(self, handle: str) -> str:
        sub = next((s for s, n in self.members.items() if n == handle), None)
        if sub is None:
            sub = f"m{next(self._ids) % 1_000_000}"
            self.members[sub] = handle
        return sub

    # -- control -----------------------------------------------------------------------------------------------------

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "accounts"):
            sub, access = self.add_member(payload["handle"])
            return json_response(201, {"account_id": sub, "access_token": access})
        if route == ("POST", "organizations"):
            return json_response(201, {"id": self.add_organization(payload["name"], payload.get("admins", []))})
        if route == ("POST", "tokens/revoke"):
            self.revoke_member(payload["handle"])
            return json_response(200, {"revoked": True})
        if route == ("PUT", "daily_limit"):
            with self.clock.lock:
                self.daily.set_limit(int(payload["limit"]), timedelta(hours=24))
            return json_response(200, payload)
        if route == ("GET", "posts"):
            return json_response(
                200, [dataclasses.asdict(p) | {"created_at": p.created_at.isoformat()} for p in self.posts()]
            )
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake LinkedIn API until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-user", default="demo")
    args = parser.parse_args(argv)
    fake = FakeLinkedIn(host=args.host, port=args.port, authorizing_member=args.demo_user)
    fake.add_organization("Demo Bakery", [args.demo_user])
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
