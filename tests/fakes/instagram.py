"""FakeInstagram: Instagram content publishing with Facebook Login, in memory over real HTTP, per networks.md §6.

On top of tests/fakes/graph.py (errors, tokens, throttling, login, containers):

    GET  /me/accounts?fields=...instagram_business_account   the person's Pages and their Instagram accounts
    GET  /:ig-user                                            {id, username, name}
    POST /:ig-user/media                                      a container: image_url (fetched: JPEG/PNG), video_url +
                                                              media_type=REELS, carousel children; caption ≤ 2200;
                                                              no media → 400 code 100
    GET  /:container?fields=status_code,status                IN_PROGRESS → FINISHED by the clock; ERROR; PUBLISHED
    POST /:ig-user/media_publish?creation_id=                 once per container; over quota → 2207042
    GET  /:ig-user/content_publishing_limit                   {"data": [{"quota_usage", "config": {quota_total, ...}}]}
    GET  /:ig-user/media                                      the account's posts (id, caption, timestamp)
    GET  /:media?fields=permalink
    POST /:media/comments?message=                            {"id"}: a comment as the account; GET lists them (text)

The person's user token acts for every Instagram account linked to a Page they administer.
Standalone: `python -m tests.fakes.instagram --port 0 --demo-user demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from tests.fakes.graph import ContainerFake, FacebookLoginFake, graph_error
from tests.fakes.server import FakeRequest, FakeResponse, json_response, serve_until_stopped


class FakeInstagram(FacebookLoginFake, ContainerFake):
    create_path: ClassVar[str] = "media"
    publish_path: ClassVar[str] = "media_publish"
    status_field: ClassVar[str] = "status_code"
    error_field: ClassVar[str] = "status"
    quota_path: ClassVar[str] = "content_publishing_limit"
    list_path: ClassVar[str] = "media"
    text_field: ClassVar[str] = "caption"
    comment_text_field: ClassVar[str] = "text"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, authorizing_user: str = "demo") -> None:
        super().__init__(host=host, port=port, authorizing_user=authorizing_user)
        self.setup_containers()

    def add_account(self, username: str, admin: str | None = None) -> str:
        """An Instagram professional account linked to a new Page of `admin`; returns the Instagram user id."""
        page_id = self.add_page(f"{username} Page", admin or username, instagram=username)
        return str(self.pages[page_id]["instagram"]["id"])

    def _accounts(self) -> dict[str, tuple[str, list[str]]]:
        return {
            str(p["instagram"]["id"]): (str(p["instagram"]["username"]), p["admins"])
            for p in self.pages.values()
            if p["instagram"]
        }

    def may_act_for(self, account: str, owner: str) -> bool:
        found = self._accounts().get(owner)
        return found is not None and account in found[1]

    def validate_container(self, owner: str, fields: dict[str, str]) -> FakeResponse | None:
        if len(fields.get("caption", "")) > 2200:
            return graph_error(400, "The caption is too long", 100, 2207010)
        if fields.get("media_type") == "CAROUSEL":
            count = len([c for c in fields.get("children", "").split(",") if c])
            if not 2 <= count <= 10:
                return graph_error(400, "Carousel must have 2 to 10 children", 100, 2207028)
            return None
        if "image_url" not in fields and "video_url" not in fields:
            return graph_error(400, "(#100) The parameter image_url is required.", 100)
        return None

    def route(self, request: FakeRequest, path: str, account: str) -> FakeResponse:
        if path == "/me/accounts":
            return self.my_pages(account)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "comments" and parts[0] in self.published:
            post = self.published[parts[0]]
            if post.deleted:
                return graph_error(400, f"Unsupported {request.method.lower()} request. Object does not exist", 100, 33)
            if not self.may_act_for(account, post.owner):
                return graph_error(403, "(#10) The user must be an administrator of this account.", 10)
            return self.comment_route(request, post.id, post.owner)
        answered = self.container_route(request, path, account)
        if answered is not None:
            return answered
        accounts = self._accounts()
        if len(parts) == 1 and parts[0] in accounts and request.method == "GET":
            username = accounts[parts[0]][0]
            return json_response(200, {"id": parts[0], "username": username, "name": username.title()})
        return graph_error(400, f"Unsupported {request.method.lower()} request.", 100, 33)

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        if (request.method, name) == ("POST", "accounts"):
            return json_response(201, {"id": self.add_account(payload["handle"], payload.get("admin"))})
        return super().extra_control(request, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Instagram Graph API until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-user", default="demo")
    args = parser.parse_args(argv)
    fake = FakeInstagram(host=args.host, port=args.port, authorizing_user=args.demo_user)
    fake.add_account("demo.bakery", args.demo_user)
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
