"""The shared HTTP client against a real local HTTP server: error sorting, rate-limit resets, redaction."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    InvalidPost,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from publishers.http import HttpClient, parse_reset, redact

NETWORK = "testnet"
TOKEN = "tok-s3cr3t-9f8e7d"
NEW_YEAR_2030 = datetime(2030, 1, 1, tzinfo=UTC)
SHORT_READ = httpx.Timeout(connect=1, read=0.3, write=1, pool=1)


@dataclasses.dataclass(frozen=True)
class Canned:
    status: int
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: object = None  # dict/list → JSON, str → text
    hang: bool = False  # read the request, then never answer until the test ends


class FakeNetwork(ThreadingHTTPServer):
    """A tiny HTTP server answering each path with a canned response, recording what it received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Canned] = {}
        self.received: list[dict[str, str]] = []
        self.release = threading.Event()  # set at teardown: hanging handlers may finish

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, status: int, headers: Mapping[str, str] | None = None, body: object = None) -> None:
        self.routes[path] = Canned(status, headers or {}, body)

    def hang(self, path: str) -> None:
        self.routes[path] = Canned(200, hang=True)


class _Handler(BaseHTTPRequestHandler):
    server: FakeNetwork

    def _respond(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.received.append({k.lower(): v for k, v in self.headers.items()})
        path = urlsplit(self.path).path  # routes ignore the query string
        canned = self.server.routes.get(path, Canned(404, body={"error": "Not found"}))
        if canned.hang:
            self.server.release.wait(timeout=30)  # bounded, in case a test forgets to release
            return
        if isinstance(canned.body, str):
            payload, content_type = canned.body.encode(), "text/plain"
        else:
            payload, content_type = json.dumps(canned.body or {}).encode(), "application/json"
        self.send_response(canned.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in canned.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _respond

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def fake() -> Iterator[FakeNetwork]:
    server = FakeNetwork()
    # A short poll interval so shutdown() at teardown returns quickly.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client(fake: FakeNetwork) -> Iterator[HttpClient]:
    http = HttpClient(fake.url, network=NETWORK, timeout=SHORT_READ)
    yield http
    http.close()


def rate_limited(client: HttpClient, fake: FakeNetwork, headers: Mapping[str, str]) -> RateLimited:
    fake.answer("/limited", 429, headers, {"error": "Too many requests"})
    with pytest.raises(RateLimited) as caught:
        client.request("POST", "/limited", token=TOKEN, mutation=True)
    return caught.value


# Success and auth header


def test_success_returns_the_response(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 201, body={"id": "post_1"})
    response = client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True, json={"text": "hi"})
    assert response.status_code == 201
    assert response.json() == {"id": "post_1"}


def test_bearer_token_is_sent_as_authorization_header(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/me", 200, body={"id": "acct_1"})
    client.request("GET", "/api/v1/me", token=TOKEN, headers={"Idempotency-Key": "k1"})
    assert fake.received[-1]["authorization"] == f"Bearer {TOKEN}"
    assert fake.received[-1]["idempotency-key"] == "k1"


def test_no_token_sends_no_authorization_header(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/public", 200)
    client.request("GET", "/public")
    assert "authorization" not in fake.received[-1]


# Rate limits


def test_rate_limit_retry_after_seconds(client: HttpClient, fake: FakeNetwork) -> None:
    before = datetime.now(UTC)
    error = rate_limited(client, fake, {"Retry-After": "30"})
    after = datetime.now(UTC)
    assert before + timedelta(seconds=30) <= error.reset_at <= after + timedelta(seconds=30)
    assert error.scope == "channel"
    assert error.http_status == 429


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Retry-After": format_datetime(NEW_YEAR_2030, usegmt=True)}, id="retry-after-http-date"),
        pytest.param({"X-RateLimit-Reset": "2030-01-01T00:00:00.000Z"}, id="mastodon-iso"),
        pytest.param({"x-rate-limit-reset": str(int(NEW_YEAR_2030.timestamp()))}, id="x-epoch"),
        pytest.param({"RateLimit-Reset": str(int(NEW_YEAR_2030.timestamp()))}, id="bluesky-epoch"),
    ],
)
def test_rate_limit_reset_is_read_from_each_network_format(
    client: HttpClient, fake: FakeNetwork, headers: Mapping[str, str]
) -> None:
    assert rate_limited(client, fake, headers).reset_at == NEW_YEAR_2030


def test_rate_limit_without_reset_header_waits_about_a_minute(client: HttpClient, fake: FakeNetwork) -> None:
    before = datetime.now(UTC)
    error = rate_limited(client, fake, {})
    after = datetime.now(UTC)
    assert before + timedelta(seconds=60) <= error.reset_at <= after + timedelta(seconds=60)


def test_rate_limit_scope_app_pauses_the_whole_app(client: HttpClient, fake: FakeNetwork) -> None:
    assert rate_limited(client, fake, {"Retry-After": "5", "X-RateLimit-Scope": "app"}).scope == "app"


# Auth


def test_401_with_expired_challenge_is_auth_expired(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer(
        "/api/v1/me",
        401,
        {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'},
        {"error": "The access token is invalid"},
    )
    with pytest.raises(AuthExpired):
        client.request("GET", "/api/v1/me", token=TOKEN)


def test_plain_401_is_auth_revoked(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/me", 401, body={"error": "token_revoked"})
    with pytest.raises(AuthRevoked) as caught:
        client.request("GET", "/api/v1/me", token=TOKEN)
    assert caught.value.http_status == 401


def test_403_is_auth_revoked(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 403, body={"error": "This action is outside the authorized scopes"})
    with pytest.raises(AuthRevoked, match="outside the authorized scopes"):
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True)


# Refusals and server errors


def test_422_is_invalid_post_carrying_the_networks_reason(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 422, body={"error": "Text is longer than 500 characters"})
    with pytest.raises(InvalidPost, match="Text is longer than 500 characters") as caught:
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True)
    assert caught.value.http_status == 422


def test_error_body_that_is_not_json_is_never_shown(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 400, body="<html>stack trace with internals</html>")
    with pytest.raises(InvalidPost) as caught:
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True)
    assert "internals" not in caught.value.message


def test_500_on_a_mutation_is_outcome_unknown(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 500, body={"error": "boom"})
    with pytest.raises(OutcomeUnknown) as caught:
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True)
    assert caught.value.http_status == 500


def test_500_on_a_read_is_transient(client: HttpClient, fake: FakeNetwork) -> None:
    fake.answer("/api/v1/posts", 500, body={"error": "boom"})
    with pytest.raises(TransientError):
        client.request("GET", "/api/v1/posts", token=TOKEN)


# Failures before or after the request reached the network


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused, and no other process can take it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("mutation", [True, False])
def test_connection_refused_is_transient_even_for_a_mutation(closed_port: int, mutation: bool) -> None:
    http = HttpClient(f"http://127.0.0.1:{closed_port}", network=NETWORK, timeout=SHORT_READ)
    try:
        with pytest.raises(TransientError):
            http.request("POST", "/api/v1/posts", token=TOKEN, mutation=mutation)
    finally:
        http.close()


def test_no_answer_after_a_mutation_was_sent_is_outcome_unknown(client: HttpClient, fake: FakeNetwork) -> None:
    fake.hang("/api/v1/posts")
    with pytest.raises(OutcomeUnknown):
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True, json={"text": "hi"})
    assert len(fake.received) == 1  # the request did reach the network


def test_no_answer_to_a_read_is_transient(client: HttpClient, fake: FakeNetwork) -> None:
    fake.hang("/api/v1/posts")
    with pytest.raises(TransientError):
        client.request("GET", "/api/v1/posts", token=TOKEN)


def test_undecodable_answer_to_a_mutation_is_outcome_unknown(client: HttpClient, fake: FakeNetwork) -> None:
    # The network answered 201, so the post exists, but the body cannot be read.
    fake.answer("/api/v1/posts", 201, {"Content-Encoding": "gzip"}, "not gzip at all")
    with pytest.raises(OutcomeUnknown):
        client.request("POST", "/api/v1/posts", token=TOKEN, mutation=True)


# Redaction


@pytest.mark.parametrize("status", [401, 422])
def test_token_in_an_error_body_never_reaches_the_message_or_logs(
    client: HttpClient, fake: FakeNetwork, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake.answer("/api/v1/posts", status, body={"error": f"bad token {TOKEN} (request had access_token=abc)"})
    caplog.set_level(logging.DEBUG, logger="publishers.http")
    with pytest.raises((AuthRevoked, InvalidPost)) as caught:
        client.request("POST", "/api/v1/posts?access_token=abc", token=TOKEN, mutation=True)
    shown = caught.value.message + str(caught.value) + caplog.text
    assert TOKEN not in shown
    assert "access_token=abc" not in shown
    assert "abc" not in shown
    assert "[redacted]" in caught.value.message


@pytest.mark.parametrize("token", ["tok-s3cr3t\n", "tok s3cr3t", "tök-s3cr3t"], ids=["newline", "space", "non-ascii"])
def test_malformed_token_is_refused_before_sending_and_never_shown(
    client: HttpClient, fake: FakeNetwork, token: str
) -> None:
    with pytest.raises(AuthRevoked) as caught:
        client.request("POST", "/api/v1/posts", token=token, mutation=True)
    assert "s3cr3t" not in str(caught.value)
    assert fake.received == []


def test_redact_removes_bearer_and_oauth_fields() -> None:
    text = 'Authorization: Bearer eyJ.abc-123 {"refresh_token": "r-456"} client_secret=s3&code=c0de'
    cleaned = redact(text)
    for secret in ("eyJ.abc-123", "r-456", "s3", "c0de"):
        assert secret not in cleaned


# parse_reset


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "30"}, NOW + timedelta(seconds=30), id="delay-seconds"),
        pytest.param({"retry-after": "0"}, NOW, id="zero-delay"),
        pytest.param({"Retry-After": "-5"}, NOW, id="negative-delay-means-now"),
        pytest.param({"Retry-After": "Tue, 01 Jan 2030 00:00:00 GMT"}, NEW_YEAR_2030, id="http-date"),
        pytest.param(
            {"X-RateLimit-Reset": "2030-01-01T00:00:00.019685Z"},
            NEW_YEAR_2030 + timedelta(microseconds=19685),
            id="iso-z",
        ),
        pytest.param({"X-RateLimit-Reset": "2030-01-01T01:00:00+01:00"}, NEW_YEAR_2030, id="iso-offset"),
        pytest.param({"X-RateLimit-Reset": "2030-01-01T00:00:00"}, NEW_YEAR_2030, id="iso-naive-is-utc"),
        pytest.param({"x-rate-limit-reset": "1893456000"}, NEW_YEAR_2030, id="epoch"),
        pytest.param({"RATELIMIT-RESET": "1893456000"}, NEW_YEAR_2030, id="header-names-any-case"),
        pytest.param(
            {"Retry-After": "10", "X-RateLimit-Reset": "1893456000"}, NOW + timedelta(seconds=10), id="retry-after-wins"
        ),
        pytest.param(
            {"Retry-After": "soon", "RateLimit-Reset": "1893456000"}, NEW_YEAR_2030, id="unreadable-falls-through"
        ),
        pytest.param({}, None, id="no-header"),
        pytest.param({"Retry-After": "  "}, None, id="blank"),
        pytest.param({"Retry-After": "whenever"}, None, id="garbage"),
        pytest.param({"Retry-After": "inf"}, None, id="infinity"),
        pytest.param({"x-rate-limit-reset": "1e30"}, None, id="epoch-out-of-range"),
    ],
)
def test_parse_reset(headers: Mapping[str, str], expected: datetime | None) -> None:
    assert parse_reset(headers, now=NOW) == expected
