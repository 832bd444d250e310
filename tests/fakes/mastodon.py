"""FakeMastodon: one Mastodon instance in memory, over real HTTP, per networks.md §1.

Imitates, for everything the adapter calls, the routes, validation, bodies,
headers and errors of Mastodon 4.3+:

    POST /api/v1/apps                          form or JSON; 422 {"error": "Validation failed: ..."}
    GET  /.well-known/oauth-authorization-server   (404 when built with pkce=False, as before 4.3)
    GET  /oauth/authorize                      auto-approves as `authorizing_username`: 302 to redirect_uri?code&state
    POST /oauth/token                          authorization_code (+ PKCE S256); 400 invalid_grant / 401 invalid_client
    GET  /api/v1/accounts/verify_credentials
    GET  /api/v2/instance                      no token needed; configuration.statuses / media_attachments
    POST /api/v2/media                         multipart file (+ description): 200 image with url, 202 video url null
    GET  /api/v1/media/:id                     206 while processing, then 200; 404 once attached or not yours
    POST /api/v1/statuses                      Idempotency-Key kept 1 h per account (a repeat returns the ORIGINAL);
                                               422 blank / too long (URLs count 23, remote mentions count @user) /
                                               too many files / media not finished processing; 404 unknown reply target
    GET|DELETE /api/v1/statuses/:id
    GET  /api/v1/accounts/:id/statuses?limit=&exclude_replies=
    GET  /@<username>[/<id>]                   a plain HTML page of the account's posts (for `make run` demos)

Every /api response carries X-RateLimit-Limit / -Remaining / -Reset (ISO 8601);
over the per-account limit: 429 {"error": "Too many requests"}. A revoked or
unknown token: 401 {"error": "The access token is invalid"}. Tokens never expire.

Control API (JSON, under `<base>/_control/`, on top of tests/fakes/server.py's):

    POST /_control/accounts          {"handle": "bluebell"} → {"account_id", "handle", "access_token", ...}
    POST /_control/tokens/revoke     {"handle": "..."}       every token of that account answers 401
    PUT  /_control/rate_limits       {"limit": 300, "window_seconds": 300}
    POST /_control/media/processing  {"polls": 2}            media answer 206 this many times (images too)
    POST /_control/idempotency/forget  {"handle"?: "..."}
    POST /_control/clock             {"advance_seconds": 3600}
    GET  /_control/posts?handle=     GET /_control/summary (same shape as the Sandbox fake's, keyed by Idempotency-Key)

Standalone: `python -m tests.fakes.mastodon --port 0` prints its URL and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import html
import itertools
import secrets
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import regex

from tests.fakes import tokens
from tests.fakes.network import RateLimit, iso
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped
from tests.fakes.standalone import FakeClock, PageEntry, RateWindows, timeline_page

IDEMPOTENCY_WINDOW = timedelta(hours=1)
DEFAULT_ACCOUNT_LIMIT = RateLimit(300, timedelta(minutes=5))
MAX_DESCRIPTION = 1500
URL_LENGTH = 23
_URL = regex.compile(r"https?://\S+")
_REMOTE_MENTION = regex.compile(r"@(\w+)@[\w.-]+\w")
INVALID_TOKEN = {"error": "The access token is invalid"}


@dataclasses.dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    scopes: list[str]


@dataclasses.dataclass
class Account:
    id: str
    username: str
    display_name: str


@dataclasses.dataclass
class Code:
    client_id: str
    redirect_uri: str
    account_id: str
    scopes: str
    challenge: str | None


@dataclasses.dataclass
class Token:
    account_id: str
    scopes: str
    revoked: bool = False


@dataclasses.dataclass
class MediaItem:
    id: str
    account_id: str
    type: str
    mime_type: str
    size: int
    description: str | None
    pending_polls: int
    attached_to: str | None = None


@dataclasses.dataclass
class Status:
    id: str
    account_id: str
    text: str
    media_ids: list[str]
    in_reply_to_id: str | None
    visibility: str
    spoiler_text: str
    language: str | None
    created_at: Any
    idempotency_key: str | None
    deleted_at: Any = None


def mastodon_length(text: str) -> int:
    """The instance's own count: every URL 23, a remote mention only its @user, the rest in graphemes."""
    text = _URL.sub("x" * URL_LENGTH, text)
    text = _REMOTE_MENTION.sub(r"@\1", text)
    return len(regex.findall(r"\X", text))


class FakeMastodon(FakeServer):
    """One instance. All state sits behind the clock's lock, held only while acting."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mount: str = "",
        latency: float = 0.0,
        max_characters: int = 500,
        max_media: int = 4,
        pkce: bool = True,
        authorizing_username: str = "demo",
        account_limit: RateLimit = DEFAULT_ACCOUNT_LIMIT,
    ) -> None:
        super().__init__(host=host, port=port, mount=mount, latency=latency)
        self.clock = FakeClock()
        self.max_characters, self.max_media, self.pkce = max_characters, max_media, pkce
        self.authorizing_username = authorizing_username
        self.rates = RateWindows(account_limit)
        self.media_processing_polls = 0  # extra 206 answers for every new upload (video always gets 1)
        self._apps: dict[str, App] = {}
        self._accounts: dict[str, Account] = {}
        self._codes: dict[str, Code] = {}
        self._tokens: dict[str, Token] = {}
        self._media: dict[str, MediaItem] = {}
        self._statuses: dict[str, Status] = {}
        self._keys: dict[tuple[str, str], tuple[str, Any]] = {}
        self._ids = itertools.count(110_000_000_000_000_001)

    # -- test helpers ------------------------------------------------------------------------------------------------

    @property
    def host_name(self) -> str:
        return urlsplit(self.base_url).netloc

    def add_account(self, username: str, display_name: str | None = None) -> tuple[str, str]:
        """An account and a token for it (as if it had authorized us already): (account_id, access_token)."""
        with self.clock.lock:
            account = self._account_named(username, display_name)
            token = self._issue_token(account.id, "read write")
            return account.id, token

    def revoke_account(self, username: str) -> int:
        with self.clock.lock:
            account = self._account_named(username)
            tokens = [t for t in self._tokens.values() if t.account_id == account.id and not t.revoked]
            for token in tokens:
                token.revoked = True
            return len(tokens)

    def statuses(self, username: str | None = None, *, include_deleted: bool = False) -> list[Status]:
        """Copies of the statuses, oldest first."""
        with self.clock.lock:
            return [
                dataclasses.replace(s)
                for s in self._statuses.values()
                if (username is None or self._accounts[s.account_id].username == username)
                and (include_deleted or s.deleted_at is None)
            ]

    def media(self, media_id: str) -> MediaItem:
        with self.clock.lock:
            return dataclasses.replace(self._media[media_id])

    def forget_idempotency_keys(self, username: str | None = None) -> int:
        with self.clock.lock:
            doomed = [k for k in self._keys if username is None or self._accounts[k[0]].username == username]
            for key in doomed:
                del self._keys[key]
            return len(doomed)

    def duplicates(self) -> dict[tuple[str, str], int]:
        return {key: n for key, n in self.count_by_key().items() if n > 1}

    def count_by_key(self) -> dict[tuple[str, str], int]:
        with self.clock.lock:
            return dict(
                Counter(
                    (self._accounts[s.account_id].username, s.idempotency_key)
                    for s in self._statuses.values()
                    if s.idempotency_key
                )
            )

    def summary(self) -> dict[str, Any]:
        by_key = self.count_by_key()
        statuses = self.statuses(include_deleted=True)
        texts = Counter((self._accounts[s.account_id].username, s.text) for s in statuses)
        return {
            "requests": self.journal.summary(),
            "posts": {"total": len(statuses), "deleted": sum(1 for s in statuses if s.deleted_at)},
            "posts_by_key": [{"handle": h, "key": k, "posts": n} for (h, k), n in by_key.items()],
            "duplicates": [{"handle": h, "key": k, "posts": n} for (h, k), n in by_key.items() if n > 1],
            "duplicate_texts": [{"handle": h, "text": t, "posts": n} for (h, t), n in texts.items() if n > 1],
        }

    # -- the protocol ------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/") or "/"
        with self.clock.lock:
            if path == "/api/v1/apps" and request.method == "POST":
                return self._register_app(request)
            if path == "/.well-known/oauth-authorization-server" and request.method == "GET":
                return self._discovery()
            if path == "/oauth/authorize" and request.method == "GET":
                return self._authorize(request)
            if path == "/oauth/token" and request.method == "POST":
                return self._token(request)
            if path == "/api/v2/instance" and request.method == "GET":
                return json_response(200, self._instance_json())
            if path.startswith("/api/"):
                return self._api(request, path)
            if path.startswith("/@") and request.method == "GET":
                return self._page(path)
        return json_response(404, {"error": "Record not found"}, outcome="rejected")

    def _register_app(self, request: FakeRequest) -> FakeResponse:
        fields = _fields(request)
        uris = fields.get("redirect_uris") or ""
        redirect_uris = uris if isinstance(uris, list) else str(uris).split()
        if not fields.get("client_name"):
            return _invalid("Validation failed: Application name can't be blank")
        if not redirect_uris or not all(
            u == "urn:ietf:wg:oauth:2.0:oob" or urlsplit(u).scheme in ("http", "https") for u in redirect_uris
        ):
            return _invalid("Validation failed: Redirect URI must be an absolute URI.")
        app = App(
            client_id=secrets.token_urlsafe(32),
            client_secret=tokens.issue(),
            name=str(fields["client_name"]),
            redirect_uris=redirect_uris,
            scopes=str(fields.get("scopes") or "read").split(),
        )
        self._apps[app.client_id] = app
        body = {
            "id": str(next(self._ids)),
            "name": app.name,
            "website": fields.get("website") or None,
            "scopes": app.scopes,
            "redirect_uri": "\n".join(app.redirect_uris),
            "redirect_uris": app.redirect_uris,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "client_secret_expires_at": 0,
        }
        return json_response(200, body, outcome="committed", client_id=app.client_id)

    def _discovery(self) -> FakeResponse:
        if not self.pkce:
            return json_response(404, {"error": "Record not found"}, outcome="rejected")
        base = self.base_url
        return json_response(
            200,
            {
                "issuer": base + "/",
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
                "code_challenge_methods_supported": ["S256"],
            },
        )

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        q = request.query
        app = self._apps.get(q.get("client_id", ""))
        if q.get("response_type") != "code" or app is None or q.get("redirect_uri") not in app.redirect_uris:
            return json_response(
                400,
                {"error": "invalid_request", "error_description": "The request is missing a required parameter."},
                outcome="rejected",
            )
        scopes = q.get("scope", "read")
        if not set(scopes.split()) <= set(app.scopes):
            return json_response(400, {"error": "invalid_scope"}, outcome="rejected")
        challenge = q.get("code_challenge") if self.pkce else None
        if challenge and q.get("code_challenge_method") != "S256":
            return json_response(400, {"error": "invalid_request"}, outcome="rejected")
        account = self._account_named(self.authorizing_username)
        code = secrets.token_urlsafe(24)
        self._codes[code] = Code(app.client_id, q["redirect_uri"], account.id, scopes, challenge)
        params = {"code": code} | ({"state": q["state"]} if "state" in q else {})
        location = f"{q['redirect_uri']}{'&' if '?' in q['redirect_uri'] else '?'}{urlencode(params)}"
        return FakeResponse(status=302, body=b"", headers={"Location": location}, outcome="committed")

    def _token(self, request: FakeRequest) -> FakeResponse:
        fields = _fields(request)
        if fields.get("grant_type") != "authorization_code":
            return json_response(400, {"error": "unsupported_grant_type"}, outcome="rejected")
        app = self._apps.get(str(fields.get("client_id", "")))
        if app is None or app.client_secret != fields.get("client_secret"):
            return json_response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed."},
                outcome="rejected",
            )
        code = self._codes.pop(str(fields.get("code", "")), None)
        grant_error = json_response(
            400,
            {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid."},
            outcome="rejected",
        )
        if code is None or code.client_id != app.client_id or code.redirect_uri != fields.get("redirect_uri"):
            return grant_error
        if code.challenge is not None:
            verifier = str(fields.get("code_verifier") or "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if digest != code.challenge:
                return grant_error
        token = self._issue_token(code.account_id, code.scopes)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": code.scopes,
            "created_at": int(self.clock.now().timestamp()),
        }
        return json_response(200, body, outcome="committed")

    def _api(self, request: FakeRequest, path: str) -> FakeResponse:
        scheme, _, raw = request.header("authorization").partition(" ")
        token = self._tokens.get(raw.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.revoked:
            return json_response(401, INVALID_TOKEN, outcome="rejected")
        quota = self.rates.consume(token.account_id, self.clock.now())
        headers = {
            "X-RateLimit-Limit": str(quota.limit),
            "X-RateLimit-Remaining": str(quota.remaining),
            "X-RateLimit-Reset": iso(quota.reset_at),
        }
        if not quota.allowed:
            return json_response(429, {"error": "Too many requests"}, outcome="rejected", headers=headers)
        response = self._route(request, path, self._accounts[token.account_id])
        response.headers.update(headers)
        return response

    def _route(self, request: FakeRequest, path: str, account: Account) -> FakeResponse:
        method = request.method
        if path == "/api/v1/accounts/verify_credentials" and method == "GET":
            return json_response(200, self._account_json(account))
        if path == "/api/v2/media" and method == "POST":
            return self._upload(request, account)
        if path.startswith("/api/v1/media/"):
            return self._one_media(request, path.removeprefix("/api/v1/media/"), account)
        if path == "/api/v1/statuses" and method == "POST":
            return self._create_status(request, account)
        if path.startswith("/api/v1/statuses/"):
            status = self._statuses.get(path.removeprefix("/api/v1/statuses/"))
            if (
                status is None
                or status.deleted_at is not None
                or (method == "DELETE" and status.account_id != account.id)
            ):
                return json_response(404, {"error": "Record not found"}, outcome="rejected")
            if method == "GET":
                return json_response(200, self._status_json(status))
            if method == "DELETE":
                status.deleted_at = self.clock.now()
                return json_response(
                    200, self._status_json(status) | {"text": status.text}, outcome="committed", status_id=status.id
                )
        if path.startswith("/api/v1/accounts/") and path.endswith("/statuses") and method == "GET":
            return self._account_statuses(request, path.split("/")[4])
        return json_response(404, {"error": "Record not found"}, outcome="rejected")

    def _upload(self, request: FakeRequest, account: Account) -> FakeResponse:
        try:
            fields = request.multipart()
        except ValueError:
            return _invalid("Validation failed: File can't be blank")
        upload = fields.get("file")
        if upload is None or not upload.data:
            return _invalid("Validation failed: File can't be blank")
        mime = upload.content_type or ""
        if not mime.startswith(("image/", "video/")):
            return _invalid("Validation failed: File content type is invalid, File is invalid")
        description = fields["description"].text if "description" in fields else None
        if description is not None and len(description) > MAX_DESCRIPTION:
            return _invalid(f"Validation failed: Description is too long (maximum is {MAX_DESCRIPTION} characters)")
        kind = "video" if mime.startswith("video/") else "image"
        item = MediaItem(
            id=str(next(self._ids)),
            account_id=account.id,
            type=kind,
            mime_type=mime,
            size=len(upload.data),
            description=description,
            pending_polls=self.media_processing_polls + (1 if kind == "video" else 0),
        )
        self._media[item.id] = item
        status = 202 if item.pending_polls else 200
        return json_response(status, self._media_json(item), outcome="committed", media_id=item.id)

    def _one_media(self, request: FakeRequest, media_id: str, account: Account) -> FakeResponse:
        item = self._media.get(media_id)
        if item is None or item.account_id != account.id or item.attached_to is not None:
            return json_response(404, {"error": "Record not found"}, outcome="rejected")
        if request.method == "PUT":
            item.description = str(_fields(request).get("description") or "") or None
            return json_response(200, self._media_json(item), outcome="committed")
        if request.method != "GET":
            return json_response(404, {"error": "Record not found"}, outcome="rejected")
        if item.pending_polls:
            item.pending_polls -= 1
            return FakeResponse(status=206, body=b"", outcome="read")
        return json_response(200, self._media_json(item))

    def _create_status(self, request: FakeRequest, account: Account) -> FakeResponse:
        key = request.header("idempotency-key") or None
        now = self.clock.now()
        if key is not None:
            stored = self._keys.get((account.id, key))
            if stored is not None and now - stored[1] <= IDEMPOTENCY_WINDOW:
                original = self._statuses[stored[0]]
                return json_response(
                    200, self._status_json(original), outcome="replayed", status_id=original.id, key=key
                )
        fields = _fields(request)
        text = str(fields.get("status") or "")
        media_ids = [str(m) for m in (fields.get("media_ids") or fields.get("media_ids[]") or [])]
        if isinstance(fields.get("media_ids[]"), str):
            media_ids = [str(fields["media_ids[]"])]
        problem = self._status_problem(account, text, media_ids, fields)
        if problem is not None:
            return problem
        reply_to = fields.get("in_reply_to_id")
        if reply_to and str(reply_to) not in self._statuses:
            return json_response(404, {"error": "Record not found"}, outcome="rejected")
        status = Status(
            id=str(next(self._ids)),
            account_id=account.id,
            text=text,
            media_ids=media_ids,
            in_reply_to_id=str(reply_to) if reply_to else None,
            visibility=str(fields.get("visibility") or "public"),
            spoiler_text=str(fields.get("spoiler_text") or ""),
            language=str(fields["language"]) if fields.get("language") else None,
            created_at=now,
            idempotency_key=key,
        )
        for media_id in media_ids:
            self._media[media_id].attached_to = status.id
        self._statuses[status.id] = status
        if key is not None:
            self._keys[(account.id, key)] = (status.id, now)
        return json_response(200, self._status_json(status), outcome="committed", status_id=status.id, key=key)

    def _status_problem(
        self, account: Account, text: str, media_ids: list[str], fields: dict[str, Any]
    ) -> FakeResponse | None:
        if not text.strip() and not media_ids:
            return _invalid("Validation failed: Text can't be blank")
        if mastodon_length(text) > self.max_characters:
            return _invalid(f"Validation failed: Text character limit of {self.max_characters} exceeded")
        if fields.get("visibility") and fields["visibility"] not in ("public", "unlisted", "private", "direct"):
            return _invalid("Validation failed: Visibility is not included in the list")
        if len(media_ids) > self.max_media:
            return _invalid(f"Validation failed: Cannot attach more than {self.max_media} files")
        items = [self._media.get(m) for m in media_ids]
        if any(i is None or i.account_id != account.id or i.attached_to is not None for i in items):
            return _invalid("Validation failed: Media attachments are invalid")
        if any(i is not None and i.pending_polls for i in items):
            return _invalid(
                "Validation failed: Cannot attach files that have not finished processing. Try again in a moment!"
            )
        if len(items) > 1 and any(i is not None and i.type == "video" for i in items):
            return _invalid("Validation failed: Cannot attach a video to a post that already contains images")
        return None

    def _account_statuses(self, request: FakeRequest, account_id: str) -> FakeResponse:
        if account_id not in self._accounts:
            return json_response(404, {"error": "Record not found"}, outcome="rejected")
        limit = min(max(int(request.query.get("limit") or 20), 1), 40)
        exclude_replies = request.query.get("exclude_replies") in ("true", "1")
        mine = [
            s
            for s in self._statuses.values()
            if s.account_id == account_id
            and s.deleted_at is None
            and not (exclude_replies and s.in_reply_to_id is not None)
        ]
        mine.sort(key=lambda s: int(s.id), reverse=True)
        return json_response(200, [self._status_json(s) for s in mine[:limit]])

    def _page(self, path: str) -> FakeResponse:
        username, _, status_id = path.removeprefix("/@").partition("/")
        account = next((a for a in self._accounts.values() if a.username == username), None)
        entries = None
        if account is not None:
            entries = [
                PageEntry(s.created_at, s.text, s.in_reply_to_id is not None, len(s.media_ids))
                for s in self._statuses.values()
                if s.account_id == account.id and s.deleted_at is None and (not status_id or s.id == status_id)
            ]
        return timeline_page(username, entries)

    # -- pieces ------------------------------------------------------------------------------------------------------

    def _account_named(self, username: str, display_name: str | None = None) -> Account:
        account = next((a for a in self._accounts.values() if a.username == username), None)
        if account is None:
            account = Account(str(next(self._ids)), username, display_name or username.title())
            self._accounts[account.id] = account
        return account

    def _issue_token(self, account_id: str, scopes: str) -> str:
        token = tokens.issue()
        self._tokens[token] = Token(account_id, scopes)
        return token

    def _account_json(self, account: Account) -> dict[str, Any]:
        return {
            "id": account.id,
            "username": account.username,
            "acct": account.username,
            "display_name": account.display_name,
            "url": f"{self.base_url}/@{account.username}",
            "locked": False,
            "bot": False,
        }

    def _media_json(self, item: MediaItem) -> dict[str, Any]:
        ready = not item.pending_polls
        return {
            "id": item.id,
            "type": item.type,
            "url": f"{self.base_url}/system/media/{item.id}" if ready else None,
            "preview_url": f"{self.base_url}/system/media/{item.id}/small",
            "remote_url": None,
            "meta": {},
            "description": item.description,
            "blurhash": None,
        }

    def _status_json(self, status: Status) -> dict[str, Any]:
        account = self._accounts[status.account_id]
        parent = self._statuses.get(status.in_reply_to_id or "")
        return {
            "id": status.id,
            "created_at": iso(status.created_at),
            "in_reply_to_id": status.in_reply_to_id,
            "in_reply_to_account_id": parent.account_id if parent else None,
            "sensitive": bool(status.spoiler_text),
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"{self.base_url}/users/{account.username}/statuses/{status.id}",
            "url": f"{self.base_url}/@{account.username}/{status.id}",
            "content": _content(status.text),
            "media_attachments": [self._media_json(self._media[m]) for m in status.media_ids],
            "account": self._account_json(account),
            "mentions": [],
            "tags": [],
            "emojis": [],
        }

    def _instance_json(self) -> dict[str, Any]:
        return {
            "domain": self.host_name,
            "title": "Fake Mastodon",
            "version": "4.3.0",
            "configuration": {
                "statuses": {
                    "max_characters": self.max_characters,
                    "max_media_attachments": self.max_media,
                    "characters_reserved_per_url": URL_LENGTH,
                },
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4"],
                    "description_limit": MAX_DESCRIPTION,
                    "image_size_limit": 16_777_216,
                    "video_size_limit": 103_809_024,
                },
            },
        }

    # -- control routes ----------------------------------------------------------------------------------------------

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "accounts"):
            handle = payload.get("handle") or payload["username"]
            account_id, token = self.add_account(handle, payload.get("display_name"))
            body = {
                "account_id": account_id,
                "handle": handle,
                "access_token": token,
                "refresh_token": None,
                "expires_at": None,
            }
            return json_response(201, body)
        if route == ("POST", "tokens/revoke"):
            return json_response(200, {"revoked": self.revoke_account(payload["handle"])})
        if route == ("PUT", "rate_limits"):
            self.rates.set_limit(int(payload["limit"]), timedelta(seconds=float(payload.get("window_seconds", 300))))
            return json_response(200, {"limit": int(payload["limit"])})
        if route == ("POST", "media/processing"):
            self.media_processing_polls = int(payload["polls"])
            return json_response(200, {"polls": self.media_processing_polls})
        if route == ("POST", "idempotency/forget"):
            return json_response(200, {"forgotten": self.forget_idempotency_keys(payload.get("handle"))})
        if route == ("POST", "clock"):
            self.clock.advance(timedelta(seconds=float(payload["advance_seconds"])))
            return json_response(200, {"now": iso(self.clock.now())})
        if route == ("GET", "posts"):
            handle = request.query.get("handle")
            return json_response(200, [self._status_json(s) for s in self.statuses(handle, include_deleted=True)])
        if route == ("GET", "summary"):
            return json_response(200, self.summary())
        return None


def _fields(request: FakeRequest) -> dict[str, Any]:
    """A form or JSON body as a dict (Mastodon takes either); repeated form fields `x[]` become lists."""
    if "json" in request.header("content-type"):
        try:
            body = request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    from urllib.parse import parse_qsl

    fields: dict[str, Any] = {}
    for name, value in parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True):
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        else:
            fields[name] = value
    return fields


def _invalid(message: str) -> FakeResponse:
    return json_response(422, {"error": message}, outcome="rejected")


def _content(text: str) -> str:
    """Text as Mastodon renders it: escaped, paragraphs on blank lines, <br /> on single line breaks."""
    paragraphs = [p for p in text.split("\n\n") if p]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br />')}</p>" for p in paragraphs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Mastodon instance until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the URL is printed)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--account-limit", type=int, default=DEFAULT_ACCOUNT_LIMIT.limit)
    parser.add_argument("--demo-user", default="demo", help="who approves /oauth/authorize")
    args = parser.parse_args(argv)
    fake = FakeMastodon(
        host=args.host,
        port=args.port,
        latency=args.latency_ms / 1000,
        authorizing_username=args.demo_user,
        account_limit=RateLimit(args.account_limit, DEFAULT_ACCOUNT_LIMIT.window),
    )
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
