"""The one HTTP client every adapter uses: timeouts, error sorting, rate-limit resets, safe logs.

`request(..., mutation=True)` marks the irreversible call (creating a post):
a failure after the request may have reached the network becomes
`OutcomeUnknown`, never something the caller would retry blindly.

A path may also be an absolute URL: networks whose server differs per account
(a Mastodon instance, a Bluesky PDS) pass the account's own URL on each call,
so one client still serves every channel. `classify` lets an adapter sort its
network's own error bodies first (Bluesky's expired token is a 400).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    InvalidPost,
    OutcomeUnknown,
    PublisherError,
    RateLimited,
    TransientError,
)

log = logging.getLogger("publishers.http")

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=10.0)
DEFAULT_RATE_LIMIT_WAIT = timedelta(seconds=60)

# Header names networks use for "when may I try again", most specific first.
RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")
_EPOCH_THRESHOLD = 1_000_000_000  # a bare number this large is a Unix time, not a delay in seconds

# What an Authorization header (RFC 6750 b64token) can carry: visible ASCII, no spaces or line breaks.
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:access|refresh)_token[\"'=:\s]+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:client_secret|code|code_verifier|password)=)[^&\s]+"),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove tokens from text that may be logged or shown."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


def parse_reset(headers: Mapping[str, str], now: datetime | None = None) -> datetime | None:
    """When a rate limit ends, from whichever header the network sent (UTC), or None.

    Understands `Retry-After` as seconds or an HTTP date, and reset headers as an
    ISO 8601 timestamp (Mastodon), Unix epoch seconds (X, Bluesky) or a delay in seconds.
    """
    now = now or datetime.now(UTC)
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in RESET_HEADERS:
        raw = (lowered.get(name) or "").strip()
        if not raw:
            continue
        parsed = _parse_moment(raw, now)
        if parsed is not None:
            return parsed
    return None


def _parse_moment(raw: str, now: datetime) -> datetime | None:
    try:
        number = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        if number >= _EPOCH_THRESHOLD:
            try:
                return datetime.fromtimestamp(number, UTC)
            except (OverflowError, OSError, ValueError):  # beyond year 9999 or time_t: not a real reset time
                return None
        return now + timedelta(seconds=max(0.0, number))
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def server_origin(raw: str, *, allow_http: bool = False, example: str = "mastodon.social") -> str:
    """A server's origin (scheme://host[:port]) from what a person typed, or ValueError saying why not.

    Takes "mastodon.social", "@me@mastodon.social" or a full URL; plain http only when `allow_http`
    (local fakes in development), so a production token is never sent in clear.
    """
    raw = raw.strip()
    if "://" not in raw:
        raw = "https://" + raw.lstrip("@").split("@")[-1]
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"Enter the address of the server, like {example}.")
    if parts.scheme == "http" and not allow_http:
        raise ValueError("The server must use https://.")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def parse_time(raw: Any) -> datetime | None:
    """An ISO 8601 time from a response body as an aware UTC datetime (naive: taken as UTC), or None."""
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _reason(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """The network's own short explanation, cleaned of anything secret."""
    reason = ""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "message", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                reason = value
                break
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                reason = value["message"]
                break
    if not reason:
        reason = response.reason_phrase or f"HTTP {response.status_code}"
    return redact(reason, secrets)[:300]


def timeout_from(settings: Mapping[str, str]) -> httpx.Timeout:
    """The adapter's timeout: settings["timeout_seconds"] for every phase of a request, else the defaults."""
    raw = settings.get("timeout_seconds")
    return httpx.Timeout(float(raw)) if raw else DEFAULT_TIMEOUT


ErrorClassifier = Callable[[httpx.Response, str, bool], PublisherError | None]


class HttpClient:
    """A pooled, thread-safe client for one network's API."""

    def __init__(
        self,
        base_url: str = "",
        *,
        network: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        classify: ErrorClassifier | None = None,
    ) -> None:
        self.network = network
        self._classify = classify
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "Multipost/1.0"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        mutation: bool = False,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; return a 2xx response or raise a `publishers.errors` class."""
        all_headers = dict(headers or {})
        if token:
            if not _HEADER_SAFE_TOKEN.fullmatch(token):
                # httpx would refuse the header with the whole value, token included, in its message.
                raise AuthRevoked(f"The saved {self.network} token is malformed. Reconnect the channel.")
            all_headers["Authorization"] = f"Bearer {token}"
        secrets = (token or "",)
        started = time.monotonic()
        try:
            response = self._client.request(method, path, headers=all_headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the network: always safe to try again.
            raise TransientError(f"Could not reach {self.network}: {type(exc).__name__}") from None
        except httpx.RequestError as exc:
            # Timeouts, dropped connections, undecodable answers and anything else httpx raises: the request
            # may have been acted on. Only the class name is kept, since httpx messages may quote headers.
            if mutation:
                raise OutcomeUnknown(
                    f"{self.network} did not answer after receiving the post ({type(exc).__name__}), "
                    "so it may or may not have been published."
                ) from None
            raise TransientError(f"{self.network} did not answer: {type(exc).__name__}") from None
        finally:
            log.debug(
                "%s %s %s in %.0f ms", self.network, method, redact(path, secrets), (time.monotonic() - started) * 1000
            )
        if response.is_success:
            return response
        raise self.error_for(response, mutation=mutation, secrets=secrets)

    def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        """The bytes and Content-Type at `url` (media to upload), refusing anything over `max_bytes`.

        Read-only, so every failure is safe to retry, except a missing or oversized file.
        """
        try:
            with self._client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code in (404, 410):
                    raise InvalidPost(f"The attached file {redact(url)[:200]} no longer exists.")
                if not response.is_success:
                    raise TransientError(f"Could not fetch the attached file ({response.status_code}).")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidPost(
                            f"An attached file is larger than {self.network} accepts ({max_bytes:,} bytes)."
                        )
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type", "").split(";")[0].strip()
        except httpx.RequestError as exc:
            raise TransientError(f"Could not fetch the attached file: {type(exc).__name__}") from None

    def error_for(self, response: httpx.Response, *, mutation: bool, secrets: tuple[str, ...] = ()) -> PublisherError:
        """Sort a non-2xx response into the error the pipeline acts on."""
        status = response.status_code
        reason = _reason(response, secrets)
        log.info("%s answered %s: %s", self.network, status, reason)
        if self._classify is not None:
            special = self._classify(response, reason, mutation)
            if special is not None:
                return special
        if status == 429:
            reset_at = parse_reset(response.headers) or datetime.now(UTC) + DEFAULT_RATE_LIMIT_WAIT
            scope: Literal["channel", "app"] = (
                "app" if response.headers.get("x-ratelimit-scope", "").lower() == "app" else "channel"
            )
            return RateLimited(
                f"{self.network} asked us to slow down until {reset_at:%H:%M:%S} UTC.",
                reset_at=reset_at,
                scope=scope,
                http_status=status,
            )
        if status == 401:
            challenge = response.headers.get("www-authenticate", "").lower()
            if "expired" in challenge or "expired" in reason.lower():
                return AuthExpired(f"The {self.network} access token expired.", http_status=status)
            return AuthRevoked(
                f"{self.network} no longer accepts this connection ({reason}). Reconnect the channel.",
                http_status=status,
            )
        if status == 403:
            return AuthRevoked(
                f"{self.network} refused: {reason}. Reconnect the channel with the needed permissions.",
                http_status=status,
            )
        if 400 <= status < 500:
            return InvalidPost(f"{self.network} refused the post: {reason}", http_status=status)
        if mutation:
            return OutcomeUnknown(
                f"{self.network} had an error ({status}) after receiving the post, "
                "so it may or may not have been published.",
                http_status=status,
            )
        return TransientError(f"{self.network} had a temporary error ({status}).", http_status=status)
