"""FakeThreads: the Threads API, in memory over real HTTP, per networks.md §7.

On top of tests/fakes/graph.py (errors, tokens, throttling, containers):

    GET  /oauth/authorize                 auto-approves as `authorizing_user`: 302 redirect_uri?code&state
    POST /oauth/access_token              code → short-lived token (1 h) and user_id
    GET  /access_token?grant_type=th_exchange_token     → long-lived token (60 days)
    GET  /refresh_access_token?grant_type=th_refresh_token  → a new 60-day token (the old one must be valid)
    GET  /v1.0/me                         {id, username, name}
    POST /v1.0/:user/threads              container: TEXT | IMAGE (image_url fetched) | VIDEO | CAROUSEL; text ≤ 500
                                          with each emoji counted as its UTF-8 bytes; reply_to_id must exist
    GET  /v1.0/:container?fields=status,error_message
    POST /v1.0/:user/threads_publish      once per container; 250 posts / 24 h
    GET  /v1.0/:user/threads_publishing_limit
    GET  /v1.0/:user/threads              the account's posts
    DELETE /v1.0/:media

Standalone: `python -m tests.fakes.threads --port 0 --demo-user demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar
from urllib.parse import urlencode

from publishers.capabilities import THREADS
from publishers.counting import text_length
from tests.fakes.graph import CLIENT_ID, CLIENT_SECRET, ContainerFake, graph_error
from tests.fakes.server import FakeRequest, FakeResponse, json_response, serve_until_stopped


class FakeThreads(ContainerFake):
    create_path: ClassVar[str] = "threads"
    publish_path: ClassVar[str] = "threads_publish"
    status_field: ClassVar[str] = "status"
    error_field: ClassVar[str] = "error_message"
    quota_path: ClassVar[str] = "threads_publishing_limit"
    list_path: ClassVar[str] = "threads"
    text_field: ClassVar[str] = "text"
    quota_total = 250

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, authorizing_user: str = "demo") -> None:
        super().__init__(host=host, port=port)
        self.setup_containers()
        self.authorizing_user = authorizing_user
        self.users: dict[str, str] = {}  # id -> username

    def add_account(self, username: str, lifetime: timedelta = timedelta(days=60)) -> tuple[str, str]:
        """(Threads user id, long-lived token)."""
        with self.clock.lock:
            user_id = self._user(username)
            token, _ = self.tokens.issue(user_id, with_refresh=False, lifetime=lifetime)
            return user_id, token

    def _user(self, username: str) -> str:
        found = next((i for i, n in self.users.items() if n == username), None)
        if found is None:
            found = self.new_id()
            self.users[found] = username
        return found

    def open_route(self, request: FakeRequest, path: str) -> FakeResponse | None:
        query = request.query
        if path == "/oauth/authorize":
            if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                return graph_error(400, "Invalid App ID", 101)
            code = self.tokens.new_code(CLIENT_ID, query["redirect_uri"], self._user(self.authorizing_user))
            location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            return FakeResponse(302, b"", headers={"Location": location}, outcome="committed")
        if path == "/oauth/access_token" and request.method == "POST":
            form = request.form()
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return graph_error(400, "Error validating client secret.", 1)
            user = self.tokens.redeem(form.get("code", ""), CLIENT_ID, form.get("redirect_uri", ""))
            if user is None:
                return graph_error(400, "Invalid verification code format.", 100, 36007)
            token, _ = self.tokens.issue(user, with_refresh=False, lifetime=timedelta(hours=1))
            return json_response(200, {"access_token": token, "user_id": int(user)}, outcome="committed")
        if path in ("/access_token", "/refresh_access_token"):
            grant = "th_exchange_token" if path == "/access_token" else "th_refresh_token"
            if query.get("grant_type") != grant or (
                grant == "th_exchange_token" and query.get("client_secret") != CLIENT_SECRET
            ):
                return graph_error(400, "Invalid grant_type or client secret", 100)
            check, user = self.tokens.check(query.get("access_token", ""))
            if check != "ok" or user is None:
                return graph_error(400, "Error validating access token", 190, 463 if check == "expired" else 460)
            token, _ = self.tokens.issue(user, with_refresh=False, lifetime=timedelta(days=60))
            body = {"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in(token)}
            return json_response(200, body, outcome="committed")
        return None

    def validate_container(self, owner: str, fields: dict[str, str]) -> FakeResponse | None:
        text = fields.get("text", "")
        if text_length(text, THREADS) > 500:
            return graph_error(400, "Param text must be at most 500 characters long.", 100)
        kind = fields.get("media_type")
        if kind not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            return graph_error(400, "Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}", 100)
        if kind == "TEXT" and not text:
            return graph_error(400, "Param text is required for TEXT posts", 100)
        reply_to = fields.get("reply_to_id")
        if reply_to and (reply_to not in self.published or self.published[reply_to].deleted):
            return graph_error(400, "The requested resource does not exist", 24, 4279009)
        return None

    def route(self, request: FakeRequest, path: str, account: str) -> FakeResponse:
        if path == "/me":
            return json_response(
                200, {"id": account, "username": self.users[account], "name": self.users[account].title()}
            )
        answered = self.container_route(request, path, account)
        if answered is not None:
            return answered
        return graph_error(400, "Unsupported request", 100, 33)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Threads API until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-user", default="demo")
    args = parser.parse_args(argv)
    return serve_until_stopped(FakeThreads(host=args.host, port=args.port, authorizing_user=args.demo_user))


if __name__ == "__main__":
    sys.exit(main())
