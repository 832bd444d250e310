"""FakeBluesky: a Bluesky PDS in memory, over real HTTP, per networks.md §2.

Imitates, for everything the adapter calls, the XRPC routes, validation, bodies,
headers and errors of a PDS:

    POST /xrpc/com.atproto.server.createSession   handle, DID or email + an APP password; JWTs with `exp`;
                                                  30 logins / 5 min per account, then 429 RateLimitExceeded
    POST /xrpc/com.atproto.server.refreshSession  Bearer refreshJwt; both tokens rotate; the old refresh token
                                                  re-yields the same successor for a 2 h grace
    GET  /xrpc/com.atproto.server.getSession
    GET  /xrpc/com.atproto.identity.resolveHandle 400 InvalidRequest "Unable to resolve handle" when unknown
    POST /xrpc/com.atproto.repo.uploadBlob        raw bytes + Content-Type → {"blob": {"$type", "ref", "mimeType", ...}}
    POST /xrpc/com.atproto.repo.createRecord      validates the post record: ≤ 300 graphemes and ≤ 3000 bytes,
                                                  facets inside the text's UTF-8 bytes and not overlapping, ≤ 4 images
                                                  each an uploaded blob ≤ 2,000,000 bytes with alt text, a TID rkey,
                                                  one record per rkey (a second create: 500; real status unverified)
    GET  /xrpc/com.atproto.repo.getRecord         400 RecordNotFound when absent
    POST /xrpc/com.atproto.repo.deleteRecord      succeeds whether or not the record exists
    GET  /profile/<handle>[/post/<rkey>]          a plain HTML page of the account's posts (for `make run` demos)

Errors are XRPC bodies {"error": Name, "message": ...}. An expired access token is
400 ExpiredToken (not 401). Writes carry RateLimit-Limit / -Remaining / -Reset
(epoch seconds) / -Policy; a record create costs 3 points of 5,000 an hour.
Simplification: revoking an account's app passwords ends its access tokens at
once (400 ExpiredToken "Token has been revoked"), where a real PDS may honour an
access JWT until it expires.

Control API (JSON, under `<base>/_control/`, on top of tests/fakes/server.py's):

    POST /_control/accounts        {"handle": "bluebell.test", "password"?: "..."}
                                   → {"account_id" (the DID), "handle", "app_password", "access_token", "refresh_token",
                                      "expires_at"}  (a session created without counting as a login)
    POST /_control/tokens/expire   {"access_token": "..."}      that token answers 400 ExpiredToken
    POST /_control/tokens/revoke   {"handle": "..."}            app passwords and every session of the account end
    PUT  /_control/rate_limits     {"scope": "writes"|"logins", "limit": n, "window_seconds": s}
    POST /_control/clock           {"advance_seconds": 7200}
    GET  /_control/posts?handle=   GET /_control/summary (same shape as the Sandbox fake's, keyed by rkey)

Standalone: `python -m tests.fakes.bluesky --port 0` prints its URL and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import itertools
import json
import secrets
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import regex

from tests.fakes.network import RateLimit, iso
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response, serve_until_stopped
from tests.fakes.standalone import FakeClock, PageEntry, RateWindows, timeline_page

POST = "app.bsky.feed.post"
ACCESS_LIFETIME = timedelta(hours=2)
REFRESH_LIFETIME = timedelta(days=90)
REFRESH_GRACE = timedelta(hours=2)
MAX_GRAPHEMES, MAX_TEXT_BYTES = 300, 3000
MAX_IMAGES, MAX_IMAGE_BYTES, MAX_BLOB_BYTES = 4, 2_000_000, 50_000_000
LOGIN_LIMIT = RateLimit(30, timedelta(minutes=5))
WRITE_LIMIT = RateLimit(5000, timedelta(hours=1))
CREATE_COST, DELETE_COST = 3, 1
_TID = regex.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


@dataclasses.dataclass
class Account:
    did: str
    handle: str
    email: str
    app_passwords: set[str]


@dataclasses.dataclass
class Session:
    did: str
    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    revoked: bool = False  # the app password it came from was deleted
    rotated_at: datetime | None = None
    successor: Session | None = None


@dataclasses.dataclass
class Record:
    did: str
    rkey: str
    cid: str
    value: dict[str, Any]
    created_at: datetime
    deleted_at: datetime | None = None

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{POST}/{self.rkey}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _cid(data: bytes) -> str:
    """CID-shaped (base32 "bafyrei…"): the adapter only passes it back; nobody checks the hash format."""
    return "bafyrei" + base64.b32encode(hashlib.sha256(data).digest()).decode().lower().rstrip("=")[:52]


def _error(status: int, name: str, message: str, **headers: str) -> FakeResponse:
    return json_response(status, {"error": name, "message": message}, outcome="rejected", headers=headers)


class FakeBluesky(FakeServer):
    """One PDS. All state sits behind the clock's lock, held only while acting."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, mount: str = "", latency: float = 0.0, did_prefix: str = ""
    ) -> None:
        super().__init__(host=host, port=port, mount=mount, latency=latency)
        self.clock = FakeClock()
        self.logins = RateWindows(LOGIN_LIMIT)
        self.writes = RateWindows(WRITE_LIMIT)
        self._accounts: dict[str, Account] = {}
        self._sessions_by_access: dict[str, Session] = {}
        self._sessions_by_refresh: dict[str, Session] = {}
        self._blobs: dict[str, tuple[str, str, int]] = {}  # cid → (did, mime, size)
        self._records: dict[tuple[str, str], Record] = {}
        self._ids = itertools.count(1)
        self._did_prefix = did_prefix or secrets.token_hex(4)

    # -- test helpers ------------------------------------------------------------------------------------------------

    def add_account(self, handle: str, password: str | None = None) -> tuple[str, str]:
        """An account with one app password: (did, app_password)."""
        with self.clock.lock:
            password = password or "-".join(secrets.token_hex(2) for _ in range(4))
            existing = self._find(handle)
            if existing is not None:
                existing.app_passwords.add(password)
                return existing.did, password
            did = f"did:plc:{self._did_prefix}{next(self._ids):016d}"
            self._accounts[did] = Account(did, handle, f"{handle.split('.')[0]}@example.com", {password})
            return did, password

    def start_session(self, did: str) -> Session:
        """A session as createSession would make, without counting as a login."""
        with self.clock.lock:
            return self._new_session(did)

    def expire_token(self, access: str) -> None:
        with self.clock.lock:
            self._sessions_by_access[access].access_expires_at = self.clock.now() - timedelta(seconds=1)

    def revoke_account(self, handle: str) -> None:
        """The person deleted the app password: it no longer logs in, and every session ends."""
        with self.clock.lock:
            account = self._find(handle)
            assert account is not None
            account.app_passwords.clear()
            for session in self._sessions_by_access.values():
                if session.did == account.did:
                    session.revoked = True

    def records(self, handle: str | None = None, *, include_deleted: bool = False) -> list[Record]:
        """Copies of the post records, in creation order."""
        with self.clock.lock:
            did = self._find(handle).did if handle else None  # type: ignore[union-attr]
            return [
                dataclasses.replace(r, value=json.loads(json.dumps(r.value)))
                for r in self._records.values()
                if (did is None or r.did == did) and (include_deleted or r.deleted_at is None)
            ]

    def summary(self) -> dict[str, Any]:
        records = self.records(include_deleted=True)
        handles = {did: a.handle for did, a in self._accounts.items()}
        texts = Counter((handles[r.did], r.value.get("text")) for r in records)
        return {
            "requests": self.journal.summary(),
            "posts": {"total": len(records), "deleted": sum(1 for r in records if r.deleted_at)},
            # One record per rkey is the protocol's own guarantee; duplicates show up as texts.
            "posts_by_key": [{"handle": handles[r.did], "key": r.rkey, "posts": 1} for r in records],
            "duplicates": [],
            "duplicate_texts": [{"handle": h, "text": t, "posts": n} for (h, t), n in texts.items() if n > 1],
        }

    # -- the protocol ------------------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self.clock.lock:
            if request.path.startswith("/profile/") and request.method == "GET":
                return self._page(request.path)
            method = request.path.removeprefix("/xrpc/")
            if (request.method, method) not in ROUTES:
                return _error(404, "MethodNotImplemented", "Method Not Implemented")
            if method == "com.atproto.server.createSession":
                return self._create_session(request)
            if method == "com.atproto.server.refreshSession":
                return self._refresh_session(request)
            if method == "com.atproto.identity.resolveHandle":
                return self._resolve_handle(request)
            session, refusal = self._authenticate(request)
            if session is None:
                assert refusal is not None
                return refusal
            route = ROUTES[(request.method, method)]
            assert route is not None
            return route(self, request, self._accounts[session.did])

    def _create_session(self, request: FakeRequest) -> FakeResponse:
        body = _json_body(request)
        identifier, password = body.get("identifier"), body.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            return _error(400, "InvalidRequest", 'Input must have the property "identifier"')
        account = self._find(identifier)
        quota = self.logins.consume((account.did if account else identifier).lower(), self.clock.now())
        headers = _rate_headers(quota, LOGIN_LIMIT)
        if not quota.allowed:
            return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", **headers)
        if account is None or password not in account.app_passwords:
            return _error(401, "AuthenticationRequired", "Invalid identifier or password", **headers)
        session = self._new_session(account.did)
        return json_response(200, self._session_json(session), outcome="committed", headers=headers, did=account.did)

    def _refresh_session(self, request: FakeRequest) -> FakeResponse:
        token = _bearer(request)
        session = self._sessions_by_refresh.get(token)
        now = self.clock.now()
        if session is None:
            return _error(400, "InvalidToken", "Token could not be verified")
        if session.revoked:
            return _error(400, "ExpiredToken", "Token has been revoked")
        if session.refresh_expires_at <= now:
            return _error(400, "ExpiredToken", "Token has expired")
        if session.successor is not None:
            assert session.rotated_at is not None
            if now - session.rotated_at > REFRESH_GRACE:
                return _error(400, "ExpiredToken", "Token has been revoked")
            successor = session.successor  # within the grace: the same successor again
            return json_response(200, self._session_json(successor), outcome="replayed")
        session.successor, session.rotated_at = self._new_session(session.did), now
        return json_response(200, self._session_json(session.successor), outcome="committed")

    def _resolve_handle(self, request: FakeRequest) -> FakeResponse:
        account = self._find(request.query.get("handle", ""))
        if account is None:
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return json_response(200, {"did": account.did})

    def _authenticate(self, request: FakeRequest) -> tuple[Session | None, FakeResponse | None]:
        token = _bearer(request)
        if not token:
            return None, _error(401, "AuthenticationRequired", "Authentication Required")
        session = self._sessions_by_access.get(token)
        if session is None:
            return None, _error(400, "InvalidToken", "Token could not be verified")
        if session.revoked:
            return None, _error(400, "ExpiredToken", "Token has been revoked")
        if session.access_expires_at <= self.clock.now():
            return None, _error(400, "ExpiredToken", "Token has expired")
        return session, None

    def _get_session(self, request: FakeRequest, account: Account) -> FakeResponse:
        return json_response(200, {"handle": account.handle, "did": account.did, "email": account.email})

    def _upload_blob(self, request: FakeRequest, account: Account) -> FakeResponse:
        mime = request.header("content-type").split(";")[0].strip()
        if not request.body:
            return _error(400, "InvalidRequest", "Request body is empty")
        if len(request.body) > MAX_BLOB_BYTES:
            return _error(413, "PayloadTooLarge", "request entity too large")
        cid = "bafkrei" + _cid(request.body)[7:]
        self._blobs[cid] = (account.did, mime, len(request.body))
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}
        return json_response(200, {"blob": blob}, outcome="committed", cid=cid)

    def _create_record(self, request: FakeRequest, account: Account) -> FakeResponse:
        body = _json_body(request)
        rkey = body.get("rkey") or self._new_tid()
        if body.get("repo") not in (account.did, account.handle):
            return _error(400, "InvalidRequest", "Input/repo must be the authenticated account")
        if body.get("collection") != POST:
            return _error(400, "InvalidRequest", "This fake only stores app.bsky.feed.post records")
        if not isinstance(rkey, str) or not _TID.match(rkey):
            return _error(400, "InvalidRequest", "Invalid record key: must be a TID")
        problem = self._record_problem(body.get("record"), account)
        if problem is not None:
            return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        if (account.did, rkey) in self._records:
            return _error(500, "InternalServerError", f"There is already a value at key: {POST}/{rkey}")
        quota = self.writes.consume(account.did, self.clock.now(), CREATE_COST)
        headers = _rate_headers(quota, self.writes.limit)
        if not quota.allowed:
            return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", **headers)
        value = body["record"]
        record = Record(account.did, rkey, _cid(json.dumps(value, sort_keys=True).encode()), value, self.clock.now())
        self._records[(account.did, rkey)] = record
        answer = {
            "uri": record.uri,
            "cid": record.cid,
            "commit": {"cid": _cid(record.cid.encode()), "rev": self._new_tid()},
            "validationStatus": "valid",
        }
        return json_response(200, answer, outcome="committed", headers=headers, key=rkey, uri=record.uri)

    def _record_problem(self, record: Any, account: Account) -> str | None:
        if not isinstance(record, dict) or record.get("$type") != POST:
            return "Record/$type must be app.bsky.feed.post"
        text, created_at = record.get("text"), record.get("createdAt")
        if not isinstance(text, str):
            return "Record/text must be a string"
        if not isinstance(created_at, str):
            return 'Record must have the property "createdAt"'
        size = len(text.encode("utf-8"))
        if len(regex.findall(r"\X", text)) > MAX_GRAPHEMES or size > MAX_TEXT_BYTES:
            return f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
        if len(record.get("langs") or []) > 3:
            return "Record/langs must not have more than 3 elements"
        previous_end = 0
        for facet in sorted(record.get("facets") or [], key=lambda f: f["index"]["byteStart"]):
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            if not (0 <= start < end <= size) or start < previous_end:
                return "Record/facets index is out of range or overlapping"
            previous_end = end
        embed = record.get("embed")
        if isinstance(embed, dict) and embed.get("$type") == "app.bsky.embed.images":
            images = embed.get("images") or []
            if len(images) > MAX_IMAGES:
                return f"Record/embed/images must not have more than {MAX_IMAGES} elements"
            for image in images:
                if not isinstance(image.get("alt"), str):
                    return "Record/embed/images/alt must be a string"
                blob = self._blobs.get(str((image.get("image") or {}).get("ref", {}).get("$link")))
                if blob is None or blob[0] != account.did:
                    return "Could not find blob"
                if not blob[1].startswith("image/") or blob[2] > MAX_IMAGE_BYTES:
                    return f"Record/embed/images/image must be an image of at most {MAX_IMAGE_BYTES} bytes"
        reply = record.get("reply")
        if reply is not None and not all(
            isinstance(reply.get(k), dict) and {"uri", "cid"} <= set(reply[k]) for k in ("root", "parent")
        ):
            return "Record/reply must have root and parent strong refs"
        return None

    def _get_record(self, request: FakeRequest, account: Account) -> FakeResponse:
        q = request.query
        owner = self._find(q.get("repo", ""))
        did = owner.did if owner else q.get("repo", "")
        record = self._records.get((did, q.get("rkey", "")))
        if record is None or record.deleted_at is not None or q.get("collection") != POST:
            return _error(
                400, "RecordNotFound", f"Could not locate record: at://{did}/{q.get('collection')}/{q.get('rkey')}"
            )
        return json_response(200, {"uri": record.uri, "cid": record.cid, "value": record.value})

    def _delete_record(self, request: FakeRequest, account: Account) -> FakeResponse:
        body = _json_body(request)
        if body.get("repo") not in (account.did, account.handle) or body.get("collection") != POST:
            return _error(400, "InvalidRequest", "Input/repo must be the authenticated account")
        quota = self.writes.consume(account.did, self.clock.now(), DELETE_COST)
        headers = _rate_headers(quota, self.writes.limit)
        if not quota.allowed:
            return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", **headers)
        record = self._records.get((account.did, str(body.get("rkey"))))
        if record is not None and record.deleted_at is None:
            record.deleted_at = self.clock.now()
        commit = {"commit": {"cid": _cid(secrets.token_bytes(8)), "rev": self._new_tid()}}
        return json_response(200, commit, outcome="committed", headers=headers, key=body.get("rkey"))

    def _page(self, path: str) -> FakeResponse:
        handle, _, rkey = path.removeprefix("/profile/").partition("/post/")
        account = self._find(handle)
        entries = None
        if account is not None:
            entries = [
                PageEntry(r.created_at, str(r.value.get("text")), bool(r.value.get("reply")))
                for r in self._records.values()
                if r.did == account.did and r.deleted_at is None and (not rkey or r.rkey == rkey)
            ]
        return timeline_page(handle, entries)

    # -- pieces ------------------------------------------------------------------------------------------------------

    def _find(self, identifier: str) -> Account | None:
        identifier = identifier.lower().lstrip("@")
        return next(
            (a for a in self._accounts.values() if identifier in (a.did, a.handle.lower(), a.email.lower())), None
        )

    def _new_session(self, did: str) -> Session:
        now = self.clock.now()
        session = Session(
            did=did,
            access=self._jwt(did, "com.atproto.access", now + ACCESS_LIFETIME),
            refresh=self._jwt(did, "com.atproto.refresh", now + REFRESH_LIFETIME),
            access_expires_at=now + ACCESS_LIFETIME,
            refresh_expires_at=now + REFRESH_LIFETIME,
        )
        self._sessions_by_access[session.access] = session
        self._sessions_by_refresh[session.refresh] = session
        return session

    def _jwt(self, did: str, scope: str, expires_at: datetime) -> str:
        header = {"typ": "at+jwt" if scope.endswith("access") else "refresh+jwt", "alg": "HS256"}
        claims = {
            "scope": scope,
            "sub": did,
            "aud": f"did:web:{self.host}",
            "iat": int(self.clock.now().timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signing_input}.{_b64(hashlib.sha256(signing_input.encode()).digest())}"

    def _session_json(self, session: Session) -> dict[str, Any]:
        account = self._accounts[session.did]
        return {
            "accessJwt": session.access,
            "refreshJwt": session.refresh,
            "handle": account.handle,
            "did": account.did,
            "email": account.email,
            "emailConfirmed": True,
            "active": True,
        }

    def _new_tid(self) -> str:
        micros = int(self.clock.now().timestamp() * 1_000_000) + next(self._ids)
        value = (micros << 10) | secrets.randbelow(1024)
        alphabet = "234567abcdefghijklmnopqrstuvwxyz"
        return "".join(alphabet[(value >> (5 * shift)) & 31] for shift in range(12, -1, -1))

    # -- control routes ----------------------------------------------------------------------------------------------

    def extra_control(self, request: FakeRequest, name: str) -> FakeResponse | None:
        payload: dict[str, Any] = request.json() if request.body else {}
        route = (request.method, name)
        if route == ("POST", "accounts"):
            handle = str(payload["handle"])
            handle = handle if "." in handle else f"{handle}.bsky.test"
            did, password = self.add_account(handle, payload.get("password"))
            session = self.start_session(did)
            body = {
                "account_id": did,
                "handle": handle,
                "app_password": password,
                "access_token": session.access,
                "refresh_token": session.refresh,
                "expires_at": iso(session.access_expires_at),
            }
            return json_response(201, body)
        if route == ("POST", "tokens/expire"):
            self.expire_token(payload["access_token"])
            return json_response(200, {"expired": True})
        if route == ("POST", "tokens/revoke"):
            self.revoke_account(payload["handle"])
            return json_response(200, {"revoked": True})
        if route == ("PUT", "rate_limits"):
            windows = self.writes if payload["scope"] == "writes" else self.logins
            windows.set_limit(int(payload["limit"]), timedelta(seconds=float(payload.get("window_seconds", 3600))))
            return json_response(200, {"scope": payload["scope"], "limit": int(payload["limit"])})
        if route == ("POST", "clock"):
            self.clock.advance(timedelta(seconds=float(payload["advance_seconds"])))
            return json_response(200, {"now": iso(self.clock.now())})
        if route == ("GET", "posts"):
            records = self.records(request.query.get("handle"), include_deleted=True)
            return json_response(200, [{"uri": r.uri, "rkey": r.rkey, "value": r.value} for r in records])
        if route == ("GET", "summary"):
            return json_response(200, self.summary())
        return None


def _bearer(request: FakeRequest) -> str:
    scheme, _, token = request.header("authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _json_body(request: FakeRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rate_headers(quota: Any, limit: RateLimit) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(quota.limit),
        "RateLimit-Remaining": str(quota.remaining),
        "RateLimit-Reset": str(int(quota.reset_at.timestamp())),
        "RateLimit-Policy": f"{limit.limit};w={int(limit.window.total_seconds())}",
    }


ROUTES = {
    ("POST", "com.atproto.server.createSession"): None,
    ("POST", "com.atproto.server.refreshSession"): None,
    ("GET", "com.atproto.identity.resolveHandle"): None,
    ("GET", "com.atproto.server.getSession"): FakeBluesky._get_session,
    ("POST", "com.atproto.repo.uploadBlob"): FakeBluesky._upload_blob,
    ("POST", "com.atproto.repo.createRecord"): FakeBluesky._create_record,
    ("GET", "com.atproto.repo.getRecord"): FakeBluesky._get_record,
    ("POST", "com.atproto.repo.deleteRecord"): FakeBluesky._delete_record,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake Bluesky PDS until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the URL is printed)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--demo-account", action="append", default=[], metavar="HANDLE:APP_PASSWORD", help="accounts to create"
    )
    args = parser.parse_args(argv)
    fake = FakeBluesky(host=args.host, port=args.port, latency=args.latency_ms / 1000)
    for item in args.demo_account:
        handle, _, password = item.partition(":")
        fake.add_account(handle, password or None)
    return serve_until_stopped(fake)


if __name__ == "__main__":
    sys.exit(main())
