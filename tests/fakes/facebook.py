"""FakeFacebook: Facebook Login and the Page publishing routes, in memory over real HTTP, per networks.md §5.

On top of tests/fakes/graph.py (errors, tokens, throttling, login):

    GET  /:page                         {id, name, link}
    POST /:page/photos                  multipart `source` (or `url`), published=false → {"id"} (an unpublished photo)
    POST /:page/feed                    message, attached_media[n]={"media_fbid": ...} → {"id": "<page>_<post>"};
                                        the same message as the Page's previous post → 506 duplicate
    GET  /:page/published_posts         newest first: id, message, created_time (+0000), permalink_url
    DELETE /:post                       {"success": true}
    POST /:post/comments                message → {"id"} as the Page (graph's `comment_route`); GET lists them

Only a Page token of that Page may post to it (else code 200). Control: POST pages {"name", "admin"}, and graph's.
Standalone: `python -m tests.fakes.facebook --port 0 --demo-user demo`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tests.fakes.graph import FacebookLoginFake, graph_error
from tests.fakes.server import FakeRequest, FakeResponse, json_response, serve_until_stopped
from tests.fakes.standalone import PageEntry, timeline_page


@dataclasses.dataclass
class PagePost:
    id: str
    page_id: str
    message: str
    photos: list[str]
    created_at: datetime
    deleted: bool = False


class FakeFacebook(FacebookLoginFake):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, authorizing_user: str = "demo") -> None:
        super().__init__(host=host, port=port, authorizing_user=authorizing_user)
        self.photos: dict[str, str] = {}  # photo id -> page id
        self.page_posts: dict[str, PagePost] = {}

    def posts(self, page_id: str | None = None) -> list[PagePost]:
        with self.clock.lock:
            return [
                dataclasses.replace(p)
                for p in self.page_posts.values()
                if not p.deleted and page_id in (None, p.page_id)
            ]

    def open_route(self, request: FakeRequest, path: str) -> FakeResponse | None:
        if path.startswith("/pages/") and request.method == "GET":
            page_id = path.removeprefix("/pages/")
            page = self.pages.get(page_id)
            entries = (
                None
                if page is None
                else [
                    PageEntry(p.created_at, p.message, False, len(p.photos))
                    for p in self.page_posts.values()
                    if p.page_id == page_id and not p.deleted
                ]
            )
            return timeline_page(page["name"] if page else page_id, entries)
        return super().open_route(request, path)

    def route(self, request: FakeRequest, path: str, account: str) -> FakeResponse:
        parts = path.strip("/").split("/")
        method = request.method
        if path == "/me/accounts":
            return self.my_pages(account)
        if len(parts) == 2 and parts[0] in self.pages:
            if account != parts[0]:
                return graph_error(403, "(#200) The user hasn't authorized the application to perform this action", 200)
            if parts[1] == "photos" and method == "POST":
                return self._photo(request, parts[0])
            if parts[1] == "feed" and method == "POST":
                return self._feed(request, parts[0])
            if parts[1] == "published_posts" and method == "GET":
                mine = sorted(
                    (p for p in self.page_posts.values() if p.page_id == parts[0] and not p.deleted),
                    key=lambda p: p.created_at,
                    reverse=True,
                )
                data = [
                    {
                        "id": p.id,
                        "message": p.message,
                        "created_time": p.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                        "permalink_url": f"{self.base_url}/pages/{p.page_id}",
                    }
                    for p in mine[: int(request.query.get("limit") or 25)]
                ]
                return json_response(200, {"data": data})
        if len(parts) == 2 and parts[1] == "comments" and parts[0] in self.page_posts and method in ("GET", "POST"):
            post = self.page_posts[parts[0]]
            if post.deleted:
                return graph_error(400, f"Unsupported {method.lower()} request. Object does not exist", 100, 33)
            if account != post.page_id:  # a Page token comments as that Page only
                return graph_error(403, "(#200) The user hasn't authorized the application to perform this action", 200)
            return self.comment_route(request, post.id, account)
        if len(parts) == 1 and parts[0] in self.pages and method == "GET":
            page = self.pages[parts[0]]
            return json_response(
                200, {"id": parts[0], "name": page["name"], "link": f"{self.base_url}/pages/{parts[0]}"}
            )
        if len(parts) == 1 and parts[0] in self.page_posts and method == "DELETE":
            post = self.page_posts[parts[0]]
            if post.deleted or post.page_id != account:
                return graph_error(400, "Unsupported delete request.", 100, 33)
            post.deleted = True
            return json_response(200, {"success": True}, outcome="committed")
        return graph_error(
            400, f"Unsupported {method.lower()} request. Object with ID '{parts[0]}' does not exist", 100, 33
        )

    def _photo(self, request: FakeRequest, page_id: str) -> FakeResponse:
        if request.header("content-type").startswith("multipart/"):
            source = request.multipart().get("source")
            if source is None or not source.data:
                return graph_error(400, "(#324) Requires upload file", 324)
            if len(source.data) >= 4_000_000:
                return graph_error(400, "Photo is too large", 100, 1366046)
        elif not self.fields(request).get("url"):
            return graph_error(400, "(#324) Requires upload file", 324)
        photo = self.new_id()
        self.photos[photo] = page_id
        return json_response(200, {"id": photo}, outcome="committed")

    def _feed(self, request: FakeRequest, page_id: str) -> FakeResponse:
        fields = self.fields(request)
        message = fields.get("message", "")
        photos = []
        for name, value in fields.items():
            if name.startswith("attached_media"):
                photo = str((_json(value) or {}).get("media_fbid") or "")
                if self.photos.get(photo) != page_id:
                    return graph_error(400, "(#100) Invalid media_fbid", 100)
                photos.append(photo)
        if not message and not photos:
            return graph_error(400, "(#100) Missing message or attachment", 100)
        mine = [p for p in self.page_posts.values() if p.page_id == page_id and not p.deleted]
        if mine and max(mine, key=lambda p: p.created_at).message == message:
            return graph_error(400, "(#506) Duplicate status message", 506)
        post = PagePost(f"{page_id}_{self.new_id()}", page_id, message, photos, self.clock.now())
        self.page_posts[post.id] = post
        return json_response(200, {"id": post.id}, outcome="committed", post_id=post.id)

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        if (request.method, name) == ("POST", "pages"):
            return json_response(201, {"id": self.add_page(payload["name"], payload["admin"])})
        return super().extra_control(request, name)


def _json(raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Facebook Graph API until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-user", default="demo")
    args = parser.parse_args(argv)
    fake = FakeFacebook(host=args.host, port=args.port, authorizing_user=args.demo_user)
    fake.add_page("Demo Bakery", args.demo_user)
    fake.add_page("Demo Café", args.demo_user)
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
