"""FakeFileHost: a web server holding files at paths, and redirects, for "add media from a URL" and safe fetching.

with FakeFileHost() as host:
    host.put("/cat.png", png_bytes, "image/png")
    host.redirect("/old", "http://elsewhere.example/x")
    ... fetch f"{host.base_url}/cat.png" ...
    host.journal  # every request, with its Host header
"""

from __future__ import annotations

import threading

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response


class FakeFileHost(FakeServer):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._redirects: dict[str, str] = {}
        self.hosts_seen: list[str] = []

    def put(self, path: str, data: bytes, content_type: str) -> str:
        with self._lock:
            self._files[path] = (data, content_type)
        return self.base_url + path

    def redirect(self, path: str, location: str) -> str:
        with self._lock:
            self._redirects[path] = location
        return self.base_url + path

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self._lock:
            self.hosts_seen.append(request.header("host"))
            if request.path in self._redirects:
                return FakeResponse(status=302, body=b"", headers={"Location": self._redirects[request.path]})
            found = self._files.get(request.path)
        if found is None:
            return json_response(404, {"error": "no such file"}, outcome="rejected")
        data, content_type = found
        return FakeResponse(status=200, body=data, headers={"Content-Type": content_type})
