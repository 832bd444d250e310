"""The machinery every network fake shares: a real HTTP server, a journal of requests, fault controls.

A fake subclasses `FakeServer` and implements `handle(request) -> FakeResponse`
(plus `extra_control` for its own control routes). The server, not the fake,
applies `Controls`, so every fake gets the same faults for free:

- latency: seconds each request waits before the fake acts (in the request's own
  thread, under no lock: hundreds of requests can be in flight at once);
- scripted faults for the next N requests matching a method, a path prefix and (optionally) a path suffix:
  "status"            answer with this status, body and headers; the fake never sees the request
  "refuse"            close the socket without answering, before doing anything (a dead upstream;
                      real connection-refused comes from `stop()` or `outage()`)
  "commit_then_drop"  let the fake act, then close the socket without answering (the duplicate-post case)
  "commit_then_hang"  let the fake act, then hold the connection until `release_hangs()`, the fault's
                      `hang_seconds` or `stop()`, then close it without answering

`stop()` / `start()` restart on the same port; state kept by the fake survives.

Control API (JSON, under `<mount>/_control/`; never journaled, delayed or faulted):

    GET    /_control/health                       {"ok": true}
    POST   /_control/latency                      {"seconds": 0.1} or {"ms": 100}
    POST   /_control/faults                       {"kind": "status"|"refuse"|"commit_then_drop"|"commit_then_hang",
                                                   "method": "POST", "path": "/api/v1/posts", "times": 1,
                                                   "status": 503, "body": {...}, "headers": {...},
                                                   "hang_seconds": 60, "path_suffix": "/comments"}
                                                                             (all but "kind" optional)
    DELETE /_control/faults                       drop every queued fault
    POST   /_control/release                      let every hung connection go (they close unanswered)
    GET    /_control/journal                      summary: total, by outcome, by status, in flight, max in flight
    GET    /_control/journal/entries?limit=100    the most recent requests, oldest first
    DELETE /_control/journal                      forget every recorded request
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

FaultKind = Literal["status", "refuse", "commit_then_drop", "commit_then_hang"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "refuse", "commit_then_drop", "commit_then_hang")
CONTROL_PREFIX = "/_control/"


# ---------------------------------------------------------------------------------------------------------------------
# Requests and responses as a fake sees them


@dataclasses.dataclass(frozen=True)
class FakeRequest:
    """One request, with the mount prefix and query string already taken off `path`."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded (first value of each field)."""
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True))

    def multipart(self) -> dict[str, MultipartField]:
        """The body parsed as multipart/form-data, by field name (the last of repeated names wins)."""
        content_type = self.header("content-type")
        if not content_type.lower().startswith("multipart/form-data"):
            raise ValueError("not multipart/form-data")
        message = BytesParser(policy=email_policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + self.body
        )
        if not message.is_multipart():
            raise ValueError("multipart body without parts")
        fields: dict[str, MultipartField] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            fields[name] = MultipartField(
                name=name,
                data=payload if isinstance(payload, bytes) else b"",
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("content-type") else None,
            )
        return fields

    def parsed_body(self) -> Any:
        """What the journal records: JSON, a form, multipart fields (files by size), text, or None for no body."""
        if not self.body:
            return None
        content_type = self.header("content-type").lower()
        if "application/x-www-form-urlencoded" in content_type:
            return self.form()
        if content_type.startswith("multipart/form-data"):
            try:
                return {name: f.summary() for name, f in self.multipart().items()}
            except ValueError:
                return {"unparseable_multipart_bytes": len(self.body)}
        if content_type.startswith(("image/", "video/", "application/octet-stream")):
            return {"content_type": content_type, "bytes": len(self.body)}
        try:
            return self.json()
        except ValueError:
            return self.body.decode("utf-8", errors="replace")


@dataclasses.dataclass(frozen=True)
class MultipartField:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def summary(self) -> Any:
        """A file as its name, type and size (never the bytes); a plain field as its text."""
        if self.filename is None:
            return self.text
        return {"filename": self.filename, "content_type": self.content_type, "bytes": len(self.data)}


@dataclasses.dataclass
class FakeResponse:
    """What a fake answers. `outcome` says what it did, for the journal:

    "committed" (state changed), "replayed" (an idempotent repeat: nothing new),
    "read", "rejected" (refused by the fake's own rules).
    """

    status: int
    body: Any = None  # JSON-serialised unless already bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    outcome: str = "read"
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # for the journal only

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if self.body is None:
            return b"", "application/json"
        return json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"


def json_response(
    status: int, body: Any, *, outcome: str = "read", headers: dict[str, str] | None = None, **details: Any
) -> FakeResponse:
    return FakeResponse(status=status, body=body, headers=dict(headers or {}), outcome=outcome, details=details)


# ---------------------------------------------------------------------------------------------------------------------
# The journal


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class JournalEntry:
    """One request as received, and what became of it.

    `outcome`: "pending" while in flight, then the fake's own outcome ("committed",
    "replayed", "read", "rejected"), or "fault" (a scripted status), "refused"
    (closed before acting), "error" (the fake raised). `dropped` is True when no
    response was written (refuse, commit_then_drop, commit_then_hang, server stopped).
    `answered_at` is when the server settled the request, just BEFORE writing the
    answer or closing the socket: a client holding its response always finds it here.
    """

    seq: int
    received_at: datetime
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    answered_at: datetime | None = None
    outcome: str = "pending"
    status: int | None = None
    response_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    fault: FaultKind | None = None
    dropped: bool = False
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def in_flight(self) -> bool:
        return self.answered_at is None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["received_at"] = self.received_at.isoformat()
        data["answered_at"] = self.answered_at.isoformat() if self.answered_at else None
        return data


class Journal:
    """Every request a fake received, thread-safe. Readers get copies; `wait_for` blocks on a condition."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []
        self._changed = threading.Condition()
        self._seq = 0

    def record(self, request: FakeRequest) -> JournalEntry:
        with self._changed:
            self._seq += 1
            entry = JournalEntry(
                seq=self._seq,
                received_at=utcnow(),
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=request.parsed_body(),
            )
            self._entries.append(entry)
            self._changed.notify_all()
            return entry

    def settle(
        self,
        entry: JournalEntry,
        *,
        outcome: str,
        status: int | None,
        response_headers: dict[str, str] | None = None,
        fault: FaultKind | None = None,
        dropped: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self._changed:
            entry.answered_at = utcnow()
            entry.outcome = outcome
            entry.status = status
            entry.response_headers = dict(response_headers or {})
            entry.fault = fault
            entry.dropped = dropped
            entry.details.update(details or {})
            self._changed.notify_all()

    def note(self, entry: JournalEntry, **changes: Any) -> None:
        """Update an in-flight entry (e.g. the fake committed but the connection is still held)."""
        with self._changed:
            for name, value in changes.items():
                setattr(entry, name, value)
            self._changed.notify_all()

    def entries(self, method: str | None = None, path_prefix: str = "") -> list[JournalEntry]:
        """Copies of the matching entries, oldest first."""
        with self._changed:
            return self._matching(method, path_prefix)

    def _matching(self, method: str | None, path_prefix: str) -> list[JournalEntry]:
        return [
            dataclasses.replace(e, details=dict(e.details))
            for e in self._entries
            if (method is None or e.method == method.upper()) and e.path.startswith(path_prefix)
        ]

    def wait_for(
        self,
        predicate: Callable[[list[JournalEntry]], bool],
        *,
        timeout: float = 10.0,
        method: str | None = None,
        path_prefix: str = "",
    ) -> list[JournalEntry]:
        """Block until `predicate(matching entries)` holds; return those entries. TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._matching(method, path_prefix)), timeout):
                raise TimeoutError(f"journal condition not met within {timeout} s")
            return self._matching(method, path_prefix)

    def max_in_flight(self, method: str | None = None, path_prefix: str = "") -> int:
        """The most matching requests that were in flight at the same moment (the concurrency ceiling observed)."""
        events: list[tuple[datetime, int]] = []
        for entry in self.entries(method, path_prefix):
            events.append((entry.received_at, 1))
            if entry.answered_at is not None:
                events.append((entry.answered_at, -1))
        events.sort(key=lambda event: (event[0], event[1]))  # an end before a start at the same instant
        current = peak = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def summary(self) -> dict[str, Any]:
        entries = self.entries()
        return {
            "total": len(entries),
            "by_outcome": dict(Counter(e.outcome for e in entries)),
            "by_status": {str(k): v for k, v in Counter(e.status for e in entries if e.status is not None).items()},
            "dropped": sum(1 for e in entries if e.dropped),
            "in_flight": sum(1 for e in entries if e.in_flight),
            "max_in_flight": self.max_in_flight(),
        }

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)


# ---------------------------------------------------------------------------------------------------------------------
# Fault injection


@dataclasses.dataclass
class Fault:
    """A scripted misbehaviour for the next `times` requests matching `method` (None: any) and `path` prefix."""

    kind: FaultKind
    method: str | None = None
    path: str = ""
    times: int = 1
    status: int = 503
    body: Any = dataclasses.field(default_factory=lambda: {"error": "Service unavailable"})
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    hang_seconds: float = 60.0
    path_suffix: str = ""  # and ending so: ids in the middle of a path are often unknown ("/comments")

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        self.method = self.method.upper() if self.method else None

    def matches(self, method: str, path: str) -> bool:
        return (
            (self.method is None or self.method == method)
            and path.startswith(self.path)
            and path.endswith(self.path_suffix)
        )


class Controls:
    """What the server does to requests before and after the fake acts. Thread-safe; read once per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._faults: list[Fault] = []
        self._release = threading.Event()

    @property
    def latency(self) -> float:
        return self._latency

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latency = float(seconds)

    def add_fault(
        self, kind: FaultKind, *, method: str | None = None, path: str = "", times: int = 1, **options: Any
    ) -> Fault:
        fault = Fault(kind=kind, method=method, path=path, times=times, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching this request, counted as used once."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                    return dataclasses.replace(fault, times=1)
        return None

    def hang_release(self) -> threading.Event:
        """The event the next hung connection waits on."""
        with self._lock:
            return self._release

    def release_hangs(self) -> None:
        """Let every connection held by commit_then_hang go; later hangs hold again."""
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()


# ---------------------------------------------------------------------------------------------------------------------
# The HTTP server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for hung or keep-alive connections; it cuts them instead
    request_queue_size = 1024  # benchmarks open hundreds of connections at once
    allow_reuse_address = True  # restart on the same port

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def cut_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connections we cut on purpose (or that the client gave up on) are not worth a traceback.
        if self.stopping.is_set() or isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API; every answer carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_HEAD(self) -> None:
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_PUT(self) -> None:
        self.server.fake._serve(self)

    def do_PATCH(self) -> None:
        self.server.fake._serve(self)

    def do_DELETE(self) -> None:
        self.server.fake._serve(self)

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def prepare(self, response: FakeResponse) -> tuple[int, dict[str, str], bytes]:
        body, content_type = response.encoded()
        headers = {"Content-Type": content_type, **response.headers, "Content-Length": str(len(body))}
        return response.status, headers, body

    def write(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send(self, response: FakeResponse) -> None:
        self.write(*self.prepare(response))

    def drop(self) -> None:
        """Close the connection without a word."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class FakeServer:
    """A fake network on 127.0.0.1. Use as a context manager, or start()/stop().

    `mount` serves everything under a path prefix (e.g. "/sandbox"), as the real
    service may be; routes, faults and the journal all use paths below it.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, mount: str = "", latency: float = 0.0) -> None:
        self.host = host
        self._port = port
        self.mount = "/" + mount.strip("/") if mount.strip("/") else ""
        self.journal = Journal()
        self.controls = Controls()
        self.controls.set_latency(latency)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.mount

    @property
    def control_url(self) -> str:
        return self.base_url + CONTROL_PREFIX.rstrip("/")

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> Self:
        """Listen (again) on our port: the one first asked for, or the one the OS picked the first time."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            httpd = _HTTPServer((self.host, self._port), self)
            self._port = httpd.server_address[1]
            thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake:{self._port}", daemon=True
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, so clients see a dead server, not a lingering one."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
            if httpd is None:
                return
            httpd.stopping.set()  # wakes latency waits and hangs; their connections then close unanswered
            httpd.shutdown()
            httpd.server_close()
            httpd.cut_connections()
            if thread is not None:
                thread.join()

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Nothing listens on the port inside the block (connection refused); back on the same port after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what subclasses implement -----------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Act on one request. Called from many threads at once: guard shared state."""
        return json_response(404, {"error": "Not found"}, outcome="rejected")

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        """The fake's own control routes (`name` is the path below /_control/); None: not one of ours."""
        return None

    # -- serving -----------------------------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        request = self._read(handler)
        if request is None:
            handler.send(json_response(404, {"error": "Not found"}))
            return
        if request.path.startswith(CONTROL_PREFIX):
            handler.send(self._control(request))
            return

        # The journal is always settled BEFORE the client can see the answer (or the closed socket), so a
        # test that has its response in hand can read the journal without waiting.
        entry = self.journal.record(request)
        stopping = handler.server.stopping
        fault = self.controls.take_fault(request.method, request.path)
        if fault is not None and fault.kind == "refuse":
            self.journal.settle(entry, outcome="refused", status=None, fault="refuse", dropped=True)
            handler.drop()
            return

        latency = self.controls.latency
        if latency and stopping.wait(latency):
            self.journal.settle(entry, outcome="refused", status=None, dropped=True, details={"reason": "stopped"})
            handler.drop()
            return

        if fault is not None and fault.kind == "status":
            response = json_response(fault.status, fault.body, outcome="fault", headers=fault.headers)
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a bug in the fake: answer 500 and keep the exception in the journal
                response = json_response(500, {"error": "fake crashed"}, outcome="error", exception=repr(exc))

        if fault is not None and fault.kind in ("commit_then_drop", "commit_then_hang"):
            if fault.kind == "commit_then_hang":
                self.journal.note(entry, outcome=response.outcome, fault=fault.kind, details=dict(response.details))
                release = self.controls.hang_release()
                deadline = time.monotonic() + fault.hang_seconds
                # Short waits so stop() (its own event) also ends the hang promptly.
                while not (release.is_set() or stopping.is_set()) and time.monotonic() < deadline:
                    release.wait(0.05)
            self.journal.settle(
                entry,
                outcome=response.outcome,
                status=None,
                fault=fault.kind,
                dropped=True,
                details=response.details | {"would_have_answered": response.status},
            )
            handler.drop()
            return

        if stopping.is_set():
            self.journal.settle(entry, outcome=response.outcome, status=None, dropped=True, details=response.details)
            handler.drop()
            return
        status, headers, body = handler.prepare(response)
        self.journal.settle(
            entry,
            outcome=response.outcome,
            status=status,
            response_headers=headers,
            fault=fault.kind if fault else None,
            details=response.details,
        )
        try:
            handler.write(status, headers, body)
        except OSError:
            self.journal.note(entry, status=None, dropped=True)
            handler.drop()

    def _read(self, handler: _Handler) -> FakeRequest | None:
        url = urlsplit(handler.path)
        path = url.path
        if self.mount:
            if path != self.mount and not path.startswith(self.mount + "/"):
                handler.read_body()
                return None
            path = path[len(self.mount) :] or "/"
        return FakeRequest(
            method=handler.command.upper(),
            path=path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=handler.read_body(),
        )

    # -- the control API ---------------------------------------------------------------------------------------------

    def _control(self, request: FakeRequest) -> FakeResponse:
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = request.json() if request.body else {}
        except ValueError:
            return json_response(400, {"error": "control bodies are JSON"})
        if not isinstance(payload, dict):
            return json_response(400, {"error": "control bodies are JSON objects"})
        try:
            response = self._generic_control(request, name, payload)
            if response is None:
                response = self.extra_control(request, name)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response(400, {"error": f"bad control request: {exc}"})
        return response or json_response(404, {"error": f"no control route {request.method} {name}"})

    def _generic_control(self, request: FakeRequest, name: str, payload: dict[str, Any]) -> FakeResponse | None:
        route = (request.method, name)
        if route == ("GET", "health"):
            return json_response(200, {"ok": True})
        if route == ("POST", "latency"):
            seconds = float(payload["ms"]) / 1000 if "ms" in payload else float(payload["seconds"])
            self.controls.set_latency(seconds)
            return json_response(200, {"latency_seconds": self.controls.latency})
        if route == ("POST", "faults"):
            kind = payload.pop("kind")
            fault = self.controls.add_fault(kind, **payload)
            return json_response(201, {"queued": dataclasses.asdict(fault)})
        if route == ("DELETE", "faults"):
            self.controls.clear_faults()
            return json_response(200, {"queued": []})
        if route == ("GET", "faults"):
            return json_response(200, {"queued": [dataclasses.asdict(f) for f in self.controls.pending_faults()]})
        if route == ("POST", "release"):
            self.controls.release_hangs()
            return json_response(200, {"released": True})
        if route == ("GET", "journal"):
            return json_response(200, self.journal.summary())
        if route == ("GET", "journal/entries"):
            limit = int(request.query.get("limit", "100"))
            return json_response(200, [e.to_json() for e in self.journal.entries()[-limit:]])
        if route == ("DELETE", "journal"):
            self.journal.clear()
            return json_response(200, {"total": 0})
        return None


def serve_until_stopped(fake: FakeServer) -> int:
    """Start the fake, print its base URL on the first line of stdout, serve until SIGTERM/SIGINT."""
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        print(fake.base_url, flush=True)
        while not done.wait(0.5):
            pass
    return 0
