"""FakeSandboxNetwork: the Sandbox protocol (see `publishers/sandbox.py`) in memory, over real HTTP.

Imitates Mastodon's semantics: per-account Idempotency-Key store kept for one
hour and taken under the state lock (a concurrent repeat never creates a second
post), 422 validation, fixed-window rate limits per account and per app with
X-RateLimit-* headers on every /api response, rotating refresh tokens.

In a test:

    with FakeSandboxNetwork() as network:
        account_id, access, refresh = network.add_account("bluebell")
        ... SandboxPublisher({"base_url": network.base_url}) ...
        assert network.duplicates() == {}

Standalone (benchmarks): `python -m tests.fakes.network --port 0 --latency-ms 100`
prints the base URL on its first line and serves until SIGTERM/SIGINT.

Control API, on top of the generic one in `tests/fakes/server.py` (JSON, under `<base>/_control/`):

    POST   /_control/accounts              {"handle": "bluebell", "display_name"?: "..."}
                                           → 201 {"account_id", "handle", "access_token", "refresh_token", "expires_at"}
    POST   /_control/tokens/expire         {"access_token": "..."}          the token answers 401 token_expired
    POST   /_control/tokens/revoke         {"token": "..."} (access or refresh: the whole grant)
                                           or {"handle": "..."} (every grant of that account)
    PUT    /_control/rate_limits           {"scope": "account"|"app", "limit": 300, "window_seconds": 300}
    DELETE /_control/rate_limits           start every rate-limit window afresh
    POST   /_control/idempotency/forget    {"handle"?: "...", "key"?: "..."}  → {"forgotten": n}
    POST   /_control/clock                 {"advance_seconds": 3600}        the network's clock (expiry, windows)
    GET    /_control/posts?handle=...      every post, oldest first, deleted ones included
    GET    /_control/summary               {"requests": <journal summary>, "posts": {"total", "deleted",
                                            "without_key"}, "posts_by_key": [{"handle", "key", "posts"}],
                                            "duplicates": [...same, posts > 1], "duplicate_texts": [...]}
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

from tests.fakes import tokens
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped

MAX_TEXT_LENGTH = 500
MAX_MEDIA = 4
MAX_IDEMPOTENCY_KEY_LENGTH = 128
IDEMPOTENCY_WINDOW = timedelta(hours=1)
DEFAULT_TOKEN_LIFETIME = timedelta(hours=2)
DEFAULT_LIST_LIMIT = 40
MAX_LIST_LIMIT = 100

RateScope = Literal["account", "app"]


@dataclasses.dataclass(frozen=True)
class RateLimit:
    limit: int
    window: timedelta


DEFAULT_ACCOUNT_LIMIT = RateLimit(300, timedelta(minutes=5))  # Mastodon's per-account default
DEFAULT_APP_LIMIT = RateLimit(100_000, timedelta(minutes=5))  # high: benchmarks must opt in to app-wide 429s


@dataclasses.dataclass(frozen=True)
class Account:
    id: str
    handle: str
    display_name: str


@dataclasses.dataclass
class Grant:
    """One access token and the refresh token issued with it. Refreshing retires the whole grant."""

    account_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    revoked: bool = False


@dataclasses.dataclass
class Post:
    id: str
    account_id: str
    handle: str
    text: str
    media_urls: tuple[str, ...]
    created_at: datetime
    idempotency_key: str | None
    deleted_at: datetime | None = None


@dataclasses.dataclass
class _Window:
    started_at: datetime
    used: int = 0


@dataclasses.dataclass(frozen=True)
class _Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as Mastodon writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class FakeSandboxNetwork(FakeServer):
    """The Sandbox protocol in memory. All state sits behind one lock, held only while acting (never during latency)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mount: str = "",
        latency: float = 0.0,
        account_limit: RateLimit = DEFAULT_ACCOUNT_LIMIT,
        app_limit: RateLimit = DEFAULT_APP_LIMIT,
        token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        super().__init__(host=host, port=port, mount=mount, latency=latency)
        self._state = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._account_ids_by_handle: dict[str, str] = {}
        self._grants_by_access: dict[str, Grant] = {}
        self._grants_by_refresh: dict[str, Grant] = {}
        self._posts: dict[str, Post] = {}
        self._keys: dict[tuple[str, str], tuple[str, datetime]] = {}  # (account id, key) → (post id, stored at)
        self._limits: dict[RateScope, RateLimit] = {"account": account_limit, "app": app_limit}
        self._account_windows: dict[str, _Window] = {}
        self._app_window: _Window | None = None
        self._clock_offset = timedelta()
        self._token_lifetime = token_lifetime
        self._ids = itertools.count(1)

    # -- test helpers ------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The network's clock: real UTC time plus whatever `advance_clock` added."""
        return datetime.now(UTC) + self._clock_offset

    def advance_clock(self, delta: timedelta) -> None:
        with self._state:
            self._clock_offset += delta

    def add_account(self, handle: str, display_name: str | None = None) -> tuple[str, str, str]:
        """Create an account with one grant; returns (account_id, access_token, refresh_token)."""
        with self._state:
            if handle in self._account_ids_by_handle:
                raise ValueError(f"handle {handle!r} is taken")
            account = Account(f"acct_{next(self._ids):06d}", handle, display_name or handle.title())
            self._accounts[account.id] = account
            self._account_ids_by_handle[handle] = account.id
            grant = self._issue_grant(account.id)
            return account.id, grant.access_token, grant.refresh_token

    def token_expires_at(self, access_token: str) -> datetime:
        with self._state:
            return self._grants_by_access[access_token].expires_at

    def expire_token(self, access_token: str) -> None:
        """From now on this access token answers 401 token_expired (its refresh token still works)."""
        with self._state:
            self._grants_by_access[access_token].expires_at = self.now() - timedelta(seconds=1)

    def revoke_token(self, token: str) -> None:
        """Revoke the grant this access or refresh token belongs to: both answer as revoked."""
        with self._state:
            grant = self._grants_by_access.get(token) or self._grants_by_refresh[token]
            grant.revoked = True

    def revoke_account(self, handle: str) -> int:
        """The user disconnected the app: revoke every grant of this account."""
        with self._state:
            account_id = self._account_ids_by_handle[handle]
            grants = [g for g in self._grants_by_access.values() if g.account_id == account_id and not g.revoked]
            for grant in grants:
                grant.revoked = True
            return len(grants)

    def set_rate_limit(self, scope: RateScope, limit: int, window: timedelta = timedelta(minutes=5)) -> None:
        """Change a limit; the current windows start afresh."""
        if scope not in ("account", "app") or limit < 0 or window <= timedelta():
            raise ValueError("scope is 'account' or 'app', limit >= 0 and window > 0")
        with self._state:
            self._limits[scope] = RateLimit(limit, window)
            self._account_windows.clear()
            self._app_window = None

    def reset_rate_limits(self) -> None:
        with self._state:
            self._account_windows.clear()
            self._app_window = None

    def forget_idempotency_keys(self, handle: str | None = None, key: str | None = None) -> int:
        """Drop stored keys (all, one account's, or one key) as if their hour had passed; returns how many."""
        with self._state:
            account_id = self._account_ids_by_handle[handle] if handle is not None else None
            doomed = [
                stored
                for stored in self._keys
                if (account_id is None or stored[0] == account_id) and (key is None or stored[1] == key)
            ]
            for stored in doomed:
                del self._keys[stored]
            return len(doomed)

    def posts(self, handle: str | None = None, *, include_deleted: bool = False) -> list[Post]:
        """Copies of the posts, oldest first."""
        with self._state:
            return [
                dataclasses.replace(p)
                for p in self._posts.values()
                if (handle is None or p.handle == handle) and (include_deleted or p.deleted_at is None)
            ]

    def committed_count_by_key(self) -> dict[tuple[str, str], int]:
        """How many posts each (handle, Idempotency-Key) ever created, deleted ones included. Only 1 is right."""
        with self._state:
            return dict(Counter((p.handle, p.idempotency_key) for p in self._posts.values() if p.idempotency_key))

    def duplicates(self) -> dict[tuple[str, str], int]:
        """The (handle, key) pairs that created more than one post."""
        return {key: count for key, count in self.committed_count_by_key().items() if count > 1}

    def duplicate_texts(self) -> dict[tuple[str, str], int]:
        """(handle, text) published more than once: catches a client that sends a new key on each retry."""
        with self._state:
            counts = Counter((p.handle, p.text) for p in self._posts.values())
        return {key: count for key, count in counts.items() if count > 1}

    def summary(self) -> dict[str, Any]:
        """Everything a benchmark asserts on, JSON-ready."""
        by_key = self.committed_count_by_key()
        posts = self.posts(include_deleted=True)
        return {
            "requests": self.journal.summary(),
            "posts": {
                "total": len(posts),
                "deleted": sum(1 for p in posts if p.deleted_at is not None),
                "without_key": sum(1 for p in posts if not p.idempotency_key),
            },
            "posts_by_key": [{"handle": h, "key": k, "posts": n} for (h, k), n in by_key.items()],
            "duplicates": [{"handle": h, "key": k, "posts": n} for (h, k), n in by_key.items() if n > 1],
            "duplicate_texts": [{"handle": h, "text": t, "posts": n} for (h, t), n in self.duplicate_texts().items()],
        }

    # -- the protocol ------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path == "/oauth/token":
            if request.method != "POST":
                return json_response(405, {"error": "Method not allowed"}, outcome="rejected")
            with self._state:
                return self._token(request)
        if request.path.startswith("/api/"):
            with self._state:
                return self._api(request)
        return json_response(404, {"error": "Not found"}, outcome="rejected")

    def _api(self, request: FakeRequest) -> FakeResponse:
        now = self.now()
        app = self._consume("app", None, now)
        if not app.allowed:
            return self._too_many(app, scope="app")
        grant, refusal = self._authenticate(request, now)
        if grant is None:
            assert refusal is not None
            refusal.headers.update(self._rate_headers(app))
            return refusal
        account_quota = self._consume("account", grant.account_id, now)
        if not account_quota.allowed:
            return self._too_many(account_quota, scope="account")
        response = self._route(request, self._accounts[grant.account_id], now)
        closest = min((app, account_quota), key=lambda q: q.remaining)  # "the limit you are closest to exceeding"
        response.headers.update(self._rate_headers(closest))
        return response

    def _route(self, request: FakeRequest, account: Account, now: datetime) -> FakeResponse:
        method, path = request.method, request.path.rstrip("/")
        if path == "/api/v1/me" and method == "GET":
            return json_response(200, self._account_json(account))
        if path == "/api/v1/posts":
            if method == "POST":
                return self._create_post(request, account, now)
            if method == "GET":
                return self._list_posts(request, account)
            return json_response(405, {"error": "Method not allowed"}, outcome="rejected")
        if path.startswith("/api/v1/posts/"):
            post = self._posts.get(unquote(path.removeprefix("/api/v1/posts/")))
            if post is None or post.account_id != account.id or post.deleted_at is not None:
                return json_response(404, {"error": "Post not found"}, outcome="rejected")
            if method == "GET":
                return json_response(200, self._post_json(post), post_id=post.id)
            if method == "DELETE":
                post.deleted_at = now
                return json_response(200, self._post_json(post), outcome="committed", post_id=post.id)
            return json_response(405, {"error": "Method not allowed"}, outcome="rejected")
        return json_response(404, {"error": "Not found"}, outcome="rejected")

    def _create_post(self, request: FakeRequest, account: Account, now: datetime) -> FakeResponse:
        key = request.header("idempotency-key") or None
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            return self._invalid(f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
        if key is not None:
            stored = self._keys.get((account.id, key))
            if stored is not None and now - stored[1] <= IDEMPOTENCY_WINDOW:
                original = self._posts[stored[0]]
                return json_response(200, self._post_json(original), outcome="replayed", post_id=original.id, key=key)
            self._keys.pop((account.id, key), None)
        try:
            body = request.json()
        except ValueError:
            return json_response(400, {"error": "Body must be JSON"}, outcome="rejected")
        if not isinstance(body, dict):
            return json_response(400, {"error": "Body must be a JSON object"}, outcome="rejected")
        text = body.get("text", "")
        media_urls = body.get("media_urls", [])
        if not isinstance(text, str):
            return self._invalid("Text must be a string")
        if not isinstance(media_urls, list) or not all(isinstance(url, str) for url in media_urls):
            return self._invalid("media_urls must be a list of URLs")
        if len(text) > MAX_TEXT_LENGTH:  # code points, as the protocol counts
            return self._invalid(f"Text is longer than {MAX_TEXT_LENGTH} characters")
        if not text.strip() and not media_urls:
            return self._invalid("Text can't be blank")
        if len(media_urls) > MAX_MEDIA:
            return self._invalid(f"Too many media attachments (at most {MAX_MEDIA})")

        post = Post(
            id=f"post_{next(self._ids):06d}",
            account_id=account.id,
            handle=account.handle,
            text=text,
            media_urls=tuple(media_urls),
            created_at=now,
            idempotency_key=key,
        )
        self._posts[post.id] = post
        if key is not None:
            self._keys[(account.id, key)] = (post.id, now)
        return json_response(201, self._post_json(post), outcome="committed", post_id=post.id, key=key)

    def _list_posts(self, request: FakeRequest, account: Account) -> FakeResponse:
        try:
            since = parse_iso(request.query["since"]) if request.query.get("since") else None
        except ValueError:
            return json_response(400, {"error": "since must be an ISO 8601 time"}, outcome="rejected")
        try:
            limit = int(request.query.get("limit") or DEFAULT_LIST_LIMIT)
        except ValueError:
            return json_response(400, {"error": "limit must be a number"}, outcome="rejected")
        limit = min(max(limit, 1), MAX_LIST_LIMIT)
        mine = [
            p
            for p in self._posts.values()
            if p.account_id == account.id and p.deleted_at is None and (since is None or p.created_at >= since)
        ]
        mine.sort(key=lambda p: p.created_at, reverse=True)
        return json_response(200, [self._post_json(p) for p in mine[:limit]])

    def _token(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return json_response(400, {"error": "unsupported_grant_type"}, outcome="rejected")
        old = self._grants_by_refresh.get(form.get("refresh_token", ""))
        if old is None or old.revoked:
            return json_response(400, {"error": "invalid_grant"}, outcome="rejected")
        old.revoked = True  # both tokens rotate: the old pair stops working at once
        new = self._issue_grant(old.account_id)
        body = {
            "access_token": new.access_token,
            "refresh_token": new.refresh_token,
            "token_type": "Bearer",
            "expires_in": int(self._token_lifetime.total_seconds()),
        }
        return json_response(200, body, outcome="committed", account_id=old.account_id)

    # -- pieces ------------------------------------------------------------------------------------------------------

    def _issue_grant(self, account_id: str) -> Grant:
        grant = Grant(
            account_id=account_id,
            access_token=tokens.issue(24, "sbx_at_"),
            refresh_token=tokens.issue(24, "sbx_rt_"),
            expires_at=self.now() + self._token_lifetime,
        )
        self._grants_by_access[grant.access_token] = grant
        self._grants_by_refresh[grant.refresh_token] = grant
        return grant

    def _authenticate(self, request: FakeRequest, now: datetime) -> tuple[Grant | None, FakeResponse | None]:
        scheme, _, token = request.header("authorization").partition(" ")
        grant = self._grants_by_access.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.revoked:
            return None, json_response(401, {"error": "token_revoked"}, outcome="rejected")
        if grant.expires_at <= now:
            challenge = 'Bearer error="invalid_token", error_description="expired"'
            return None, json_response(
                401, {"error": "token_expired"}, outcome="rejected", headers={"WWW-Authenticate": challenge}
            )
        return grant, None

    def _consume(self, scope: RateScope, account_id: str | None, now: datetime) -> _Quota:
        """Count one request against a fixed window that starts with its first request."""
        limit = self._limits[scope]
        window = self._app_window if scope == "app" else self._account_windows.get(account_id or "")
        if window is None or now >= window.started_at + limit.window:
            window = _Window(started_at=now)
            if scope == "app":
                self._app_window = window
            else:
                self._account_windows[account_id or ""] = window
        allowed = window.used < limit.limit
        if allowed:
            window.used += 1
        return _Quota(allowed, limit.limit, max(limit.limit - window.used, 0), window.started_at + limit.window)

    def _rate_headers(self, quota: _Quota) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(quota.limit),
            "X-RateLimit-Remaining": str(quota.remaining),
            "X-RateLimit-Reset": iso(quota.reset_at),
        }

    def _too_many(self, quota: _Quota, *, scope: RateScope) -> FakeResponse:
        headers = self._rate_headers(quota)
        headers["X-RateLimit-Remaining"] = "0"
        headers["Retry-After"] = str(max(0, math.ceil((quota.reset_at - self.now()).total_seconds())))
        if scope == "app":
            headers["X-RateLimit-Scope"] = "app"
        return json_response(429, {"error": "Too many requests"}, outcome="rejected", headers=headers, scope=scope)

    def _invalid(self, reason: str) -> FakeResponse:
        return json_response(422, {"error": reason}, outcome="rejected")

    def _account_json(self, account: Account) -> dict[str, str]:
        return {
            "id": account.id,
            "handle": account.handle,
            "display_name": account.display_name,
            "url": f"{self.base_url}/@{account.handle}",
        }

    def _post_json(self, post: Post) -> dict[str, str]:
        return {
            "id": post.id,
            "url": f"{self.base_url}/@{post.handle}/{post.id}",
            "text": post.text,
            "created_at": iso(post.created_at),
        }

    # -- control routes ----------------------------------------------------------------------------------------------

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "accounts"):
            account_id, access, refresh = self.add_account(payload["handle"], payload.get("display_name"))
            body = {
                "account_id": account_id,
                "handle": payload["handle"],
                "access_token": access,
                "refresh_token": refresh,
                "expires_at": iso(self.token_expires_at(access)),
            }
            return json_response(201, body)
        if route == ("POST", "tokens/expire"):
            self.expire_token(payload["access_token"])
            return json_response(200, {"expired": True})
        if route == ("POST", "tokens/revoke"):
            if "handle" in payload:
                return json_response(200, {"revoked": self.revoke_account(payload["handle"])})
            self.revoke_token(payload["token"])
            return json_response(200, {"revoked": 1})
        if route == ("PUT", "rate_limits"):
            window = timedelta(seconds=float(payload.get("window_seconds", 300)))
            self.set_rate_limit(payload["scope"], int(payload["limit"]), window)
            return json_response(200, {"scope": payload["scope"], "limit": int(payload["limit"])})
        if route == ("DELETE", "rate_limits"):
            self.reset_rate_limits()
            return json_response(200, {"reset": True})
        if route == ("POST", "idempotency/forget"):
            forgotten = self.forget_idempotency_keys(payload.get("handle"), payload.get("key"))
            return json_response(200, {"forgotten": forgotten})
        if route == ("POST", "clock"):
            self.advance_clock(timedelta(seconds=float(payload["advance_seconds"])))
            return json_response(200, {"now": iso(self.now())})
        if route == ("GET", "posts"):
            posts = self.posts(request.query.get("handle"), include_deleted=True)
            return json_response(200, [self._control_post_json(p) for p in posts])
        if route == ("GET", "summary"):
            return json_response(200, self.summary())
        return None

    def _control_post_json(self, post: Post) -> dict[str, Any]:
        return self._post_json(post) | {
            "handle": post.handle,
            "media_urls": list(post.media_urls),
            "idempotency_key": post.idempotency_key,
            "deleted_at": iso(post.deleted_at) if post.deleted_at else None,
        }


# ---------------------------------------------------------------------------------------------------------------------
# Standalone


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Sandbox network until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the URL is printed)")
    parser.add_argument("--mount", default="", help='path prefix, e.g. "/sandbox"')
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--account-limit", type=int, default=DEFAULT_ACCOUNT_LIMIT.limit, help="per window, each")
    parser.add_argument("--app-limit", type=int, default=DEFAULT_APP_LIMIT.limit, help="per window, whole app")
    parser.add_argument("--window-seconds", type=float, default=DEFAULT_ACCOUNT_LIMIT.window.total_seconds())
    args = parser.parse_args(argv)

    window = timedelta(seconds=args.window_seconds)
    network = FakeSandboxNetwork(
        host=args.host,
        port=args.port,
        mount=args.mount,
        latency=args.latency_ms / 1000,
        account_limit=RateLimit(args.account_limit, window),
        app_limit=RateLimit(args.app_limit, window),
    )
    return serve_until_stopped(network)


if __name__ == "__main__":
    sys.exit(main())
