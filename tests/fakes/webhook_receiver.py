"""A receiver of our outgoing webhooks on 127.0.0.1: keeps each request's raw body and headers for checking.

Faults come from the shared machinery (`controls.add_fault("status", status=500)` answers 500 without the
receiver seeing the request), so `received` holds only the requests it accepted, in order.
"""

from __future__ import annotations

import threading

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response


class WebhookReceiver(FakeServer):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._received: list[FakeRequest] = []

    @property
    def url(self) -> str:
        return self.base_url + "/hooks/multipost"

    @property
    def received(self) -> list[FakeRequest]:
        with self._lock:
            return list(self._received)

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST":
            return json_response(405, {"error": "POST only"}, outcome="rejected")
        with self._lock:
            self._received.append(request)
        return json_response(200, {"ok": True}, outcome="committed")
