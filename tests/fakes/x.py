"""FakeX: the X API v2 routes the adapter calls, in memory over real HTTP, per networks.md §3.

    GET  /i/oauth2/authorize          auto-approves as `authorizing_username`: 302 redirect_uri?code&state (PKCE S256)
    POST /2/oauth2/token              Basic client auth; authorization_code (+ code_verifier) | refresh_token (ROTATES:
                                      a used refresh token answers 400 invalid_request)
    GET  /2/users/me
    POST /2/tweets                    weighted 280 (twitter-text), ≤ 4 media that finished processing, reply target must
                                      exist, identical text → 403 duplicate content; 201 {"data": {"id", "text", ...}}
    DELETE /2/tweets/:id
    GET  /2/users/:id/tweets          newest first, `created_at` with tweet.fields
    POST /2/media/upload              simple (multipart `media`); chunked video: /initialize, /:id/append, /:id/finalize
    GET  /2/media/upload?command=STATUS&media_id=   processing_info pending → succeeded (by polls)

Every /2 response carries x-rate-limit-limit/-remaining/-reset (epoch seconds) for POST /2/tweets' per-user window,
plus x-user-limit-24hour-* and x-app-limit-24hour-*. Over a limit: 429 with the problem type
`…/rate-limit-exceeded`, or `…/usage-capped` when the app's daily cap is spent. Expired or revoked tokens: 401.

Control (under /_control/): POST accounts {"handle"}, POST tokens/revoke {"handle"},
POST tokens/expire {"access_token"}, PUT rate_limits {"limit", "window_seconds"},
PUT daily_caps {"user": n, "app": n}, POST clock {"advance_seconds"}, GET posts.
Standalone: `python -m tests.fakes.x --port 0 --demo-user demo`.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import itertools
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from twitter_text import parse_tweet

from tests.fakes.network import RateLimit, iso
from tests.fakes.oauth import TokenStore
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped
from tests.fakes.standalone import FakeClock, PageEntry, RateWindows, timeline_page

CLIENT_ID, CLIENT_SECRET = "fake-x-client", "fake-x-secret"
PROBLEM = "https://api.twitter.com/2/problems/"


@dataclasses.dataclass
class Tweet:
    id: str
    author_id: str
    text: str
    media_ids: list[str]
    reply_to: str | None
    created_at: datetime
    deleted: bool = False


@dataclasses.dataclass
class Upload:
    id: str
    kind: str
    total: int
    received: int = 0
    pending_polls: int = 0
    finalized: bool = False


def _problem(status: int, title: str, detail: str, kind: str = "about:blank", **headers: str) -> FakeResponse:
    body = {"title": title, "detail": detail, "type": kind, "status": status}
    return json_response(status, body, outcome="rejected", headers=headers)


class FakeX(FakeServer):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, authorizing_username: str = "demo") -> None:
        super().__init__(host=host, port=port)
        self.clock = FakeClock()
        self.tokens = TokenStore(self.clock, access_lifetime=timedelta(hours=2))
        self.authorizing_username = authorizing_username
        self.rates = RateWindows(RateLimit(100, timedelta(minutes=15)))
        self.user_daily = RateWindows(RateLimit(10_000, timedelta(hours=24)))
        self.app_daily = RateWindows(RateLimit(100_000, timedelta(hours=24)))
        self.video_polls = 1
        self.users: dict[str, str] = {}  # id -> username
        self.tweets: dict[str, Tweet] = {}
        self.uploads: dict[str, Upload] = {}
        self._ids = itertools.count(1_880_000_000_000_000_001)

    # -- test helpers ------------------------------------------------------------------------------------------------

    def add_account(self, username: str) -> tuple[str, str, str]:
        """(user id, access token, refresh token), as if the user had approved us already."""
        with self.clock.lock:
            user_id = self._user(username)
            access, refresh = self.tokens.issue(user_id)
            assert refresh is not None
            return user_id, access, refresh

    def posts(self, username: str | None = None) -> list[Tweet]:
        with self.clock.lock:
            return [
                dataclasses.replace(t)
                for t in self.tweets.values()
                if not t.deleted and (username is None or self.users[t.author_id] == username)
            ]

    def revoke_account(self, username: str) -> None:
        with self.clock.lock:
            self.tokens.revoke(self._user(username))

    # -- protocol ----------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/")
        with self.clock.lock:
            if path == "/i/oauth2/authorize":
                return self._authorize(request)
            if path == "/2/oauth2/token" and request.method == "POST":
                return self._token(request)
            if path.startswith("/@"):
                username = path[2:]
                user_id = next((i for i, n in self.users.items() if n == username), None)
                entries = (
                    None
                    if user_id is None
                    else [
                        PageEntry(t.created_at, t.text, t.reply_to is not None, len(t.media_ids))
                        for t in self.tweets.values()
                        if t.author_id == user_id and not t.deleted
                    ]
                )
                return timeline_page(username, entries)
            check, user_id = self.tokens.check(request.header("authorization").removeprefix("Bearer "))
            if check != "ok" or user_id is None:
                return _problem(401, "Unauthorized", "Unauthorized")
            return self._api(request, path, user_id)

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return json_response(400, {"error": "invalid_request"}, outcome="rejected")
        code = self.tokens.new_code(
            CLIENT_ID, q["redirect_uri"], self._user(self.authorizing_username), q["code_challenge"]
        )
        location = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        return FakeResponse(302, b"", headers={"Location": location}, outcome="committed")

    def _token(self, request: FakeRequest) -> FakeResponse:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.header("authorization") != expected:
            return json_response(401, {"error": "unauthorized_client"}, outcome="rejected")
        form = request.form()
        invalid = json_response(
            400,
            {"error": "invalid_request", "error_description": "Value passed for the token was invalid."},
            outcome="rejected",
        )
        if form.get("grant_type") == "authorization_code":
            user_id = self.tokens.redeem(
                form.get("code", ""), CLIENT_ID, form.get("redirect_uri", ""), form.get("code_verifier")
            )
            if user_id is None:
                return invalid
            access, refresh = self.tokens.issue(user_id)
        elif form.get("grant_type") == "refresh_token":
            issued = self.tokens.use_refresh(form.get("refresh_token", ""))
            if issued is None:
                return invalid
            access, refresh = issued
        else:
            return invalid
        body = {
            "token_type": "bearer",
            "expires_in": self.tokens.expires_in(access),
            "access_token": access,
            "scope": "tweet.read tweet.write users.read media.write offline.access",
            "refresh_token": refresh,
        }
        return json_response(200, body, outcome="committed")

    def _api(self, request: FakeRequest, path: str, user_id: str) -> FakeResponse:
        method = request.method
        if path == "/2/users/me":
            return json_response(200, {"data": self._user_json(user_id)})
        if path == "/2/tweets" and method == "POST":
            return self._create(request, user_id)
        if path.startswith("/2/tweets/") and method == "DELETE":
            tweet = self.tweets.get(path.rsplit("/", 1)[-1])
            if tweet is None or tweet.author_id != user_id or tweet.deleted:
                return _problem(404, "Not Found Error", "Could not find tweet")
            tweet.deleted = True
            return json_response(200, {"data": {"deleted": True}}, outcome="committed")
        if path.startswith("/2/users/") and path.endswith("/tweets") and method == "GET":
            owner = path.split("/")[3]
            limit = min(int(request.query.get("max_results") or 10), 100)
            mine = sorted(
                (t for t in self.tweets.values() if t.author_id == owner and not t.deleted),
                key=lambda t: int(t.id),
                reverse=True,
            )[:limit]
            data = [
                {"id": t.id, "text": t.text, "created_at": iso(t.created_at), "edit_history_tweet_ids": [t.id]}
                | ({"referenced_tweets": [{"type": "replied_to", "id": t.reply_to}]} if t.reply_to else {})
                for t in mine
            ]
            return json_response(
                200, {"data": data, "meta": {"result_count": len(data)}} if data else {"meta": {"result_count": 0}}
            )
        if path.startswith("/2/media/upload"):
            return self._media(request, path)
        return _problem(404, "Not Found Error", f"No route {method} {path}")

    def _create(self, request: FakeRequest, user_id: str) -> FakeResponse:
        now = self.clock.now()
        window = self.rates.consume(user_id, now)
        user_day = self.user_daily.consume(user_id, now)
        app_day = self.app_daily.consume("app", now)
        headers = {
            "x-rate-limit-limit": str(window.limit),
            "x-rate-limit-remaining": str(window.remaining),
            "x-rate-limit-reset": str(int(window.reset_at.timestamp())),
            "x-user-limit-24hour-limit": str(user_day.limit),
            "x-user-limit-24hour-remaining": str(user_day.remaining),
            "x-user-limit-24hour-reset": str(int(user_day.reset_at.timestamp())),
            "x-app-limit-24hour-limit": str(app_day.limit),
            "x-app-limit-24hour-remaining": str(app_day.remaining),
            "x-app-limit-24hour-reset": str(int(app_day.reset_at.timestamp())),
        }
        if not app_day.allowed:
            return _problem(429, "UsageCapExceeded", "Usage cap exceeded", PROBLEM + "usage-capped", **headers)
        if not (window.allowed and user_day.allowed):
            return _problem(429, "Too Many Requests", "Too Many Requests", PROBLEM + "rate-limit-exceeded", **headers)
        try:
            body = request.json()
        except ValueError:
            return _problem(400, "Invalid Request", "Body is not JSON", PROBLEM + "invalid-request")
        text = str(body.get("text") or "")
        media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids") or []]
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if not text and not media_ids:
            return _problem(400, "Invalid Request", "text or media is required", PROBLEM + "invalid-request")
        if text and parse_tweet(text).weightedLength > 280:
            return _problem(403, "Forbidden", "You are not permitted to perform this action.")
        if len(media_ids) > 4:
            return _problem(400, "Invalid Request", "media_ids: maximum of 4 items", PROBLEM + "invalid-request")
        if any(
            m not in self.uploads or self.uploads[m].pending_polls or not self.uploads[m].finalized for m in media_ids
        ):
            return _problem(400, "Invalid Request", "Your media IDs are invalid.", PROBLEM + "invalid-request")
        if reply_to and (reply_to not in self.tweets or self.tweets[reply_to].deleted):
            return _problem(400, "Invalid Request", "The reply target does not exist", PROBLEM + "invalid-request")
        if text and any(t.author_id == user_id and t.text == text and not t.deleted for t in self.tweets.values()):
            return _problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        tweet = Tweet(str(next(self._ids)), user_id, text, media_ids, reply_to, now)
        self.tweets[tweet.id] = tweet
        data = {"id": tweet.id, "text": text, "edit_history_tweet_ids": [tweet.id]}
        return json_response(201, {"data": data}, outcome="committed", headers=headers, tweet_id=tweet.id)

    def _media(self, request: FakeRequest, path: str) -> FakeResponse:
        parts = path.split("/")
        if path == "/2/media/upload" and request.method == "POST":
            fields = request.multipart()
            if "media" not in fields:
                return _problem(400, "Invalid Request", "media is required", PROBLEM + "invalid-request")
            upload = Upload(
                str(next(self._ids)), "image", len(fields["media"].data), len(fields["media"].data), 0, True
            )
            self.uploads[upload.id] = upload
            return json_response(200, {"data": self._upload_json(upload)}, outcome="committed")
        if path == "/2/media/upload" and request.method == "GET":
            upload = self.uploads.get(request.query.get("media_id", ""))
            if upload is None:
                return _problem(400, "Invalid Request", "Invalid media_id", PROBLEM + "invalid-request")
            if upload.pending_polls:
                upload.pending_polls -= 1
            return json_response(200, {"data": self._upload_json(upload)})
        if path == "/2/media/upload/initialize":
            body = request.json()
            upload = Upload(str(next(self._ids)), "video", int(body["total_bytes"]), pending_polls=self.video_polls)
            self.uploads[upload.id] = upload
            return json_response(
                200,
                {"data": {"id": upload.id, "media_key": f"13_{upload.id}", "expires_after_secs": 86400}},
                outcome="committed",
            )
        upload = self.uploads.get(parts[4]) if len(parts) > 5 else None
        if upload is None:
            return _problem(400, "Invalid Request", "Invalid media_id", PROBLEM + "invalid-request")
        if parts[5] == "append":
            upload.received += len(request.multipart()["media"].data)
            return json_response(200, {"data": {"expires_at": 0}}, outcome="committed")
        if parts[5] == "finalize":
            if upload.received != upload.total:
                return _problem(400, "Invalid Request", "File size does not match", PROBLEM + "invalid-request")
            upload.finalized = True
            return json_response(200, {"data": self._upload_json(upload)}, outcome="committed")
        return _problem(404, "Not Found Error", "No such media route")

    def _upload_json(self, upload: Upload) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": upload.id,
            "media_key": f"3_{upload.id}",
            "size": upload.total,
            "expires_after_secs": 86400,
        }
        if upload.kind == "video":
            state = "pending" if upload.pending_polls else "succeeded"
            data["processing_info"] = {"state": state, "check_after_secs": 1}
        return data

    def _user(self, username: str) -> str:
        user_id = next((i for i, n in self.users.items() if n == username), None)
        if user_id is None:
            user_id = str(next(self._ids))
            self.users[user_id] = username
        return user_id

    def _user_json(self, user_id: str) -> dict[str, str]:
        return {"id": user_id, "name": self.users[user_id].title(), "username": self.users[user_id]}

    # -- control -----------------------------------------------------------------------------------------------------

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "accounts"):
            user_id, access, refresh = self.add_account(payload["handle"])
            return json_response(201, {"account_id": user_id, "access_token": access, "refresh_token": refresh})
        if route == ("POST", "tokens/revoke"):
            self.revoke_account(payload["handle"])
            return json_response(200, {"revoked": True})
        if route == ("POST", "tokens/expire"):
            with self.clock.lock:
                self.tokens.expire(payload["access_token"])
            return json_response(200, {"expired": True})
        if route == ("PUT", "rate_limits"):
            with self.clock.lock:
                self.rates.set_limit(
                    int(payload["limit"]), timedelta(seconds=float(payload.get("window_seconds", 900)))
                )
            return json_response(200, {"limit": int(payload["limit"])})
        if route == ("PUT", "daily_caps"):
            with self.clock.lock:
                if "user" in payload:
                    self.user_daily.set_limit(int(payload["user"]), timedelta(hours=24))
                if "app" in payload:
                    self.app_daily.set_limit(int(payload["app"]), timedelta(hours=24))
            return json_response(200, payload)
        if route == ("POST", "clock"):
            self.clock.advance(timedelta(seconds=float(payload["advance_seconds"])))
            return json_response(200, {"now": iso(self.clock.now())})
        if route == ("GET", "posts"):
            return json_response(200, [{"id": t.id, "text": t.text, "author_id": t.author_id} for t in self.posts()])
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake X API until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-user", default="demo")
    args = parser.parse_args(argv)
    return serve_until_stopped(FakeX(host=args.host, port=args.port, authorizing_username=args.demo_user))


if __name__ == "__main__":
    sys.exit(main())
