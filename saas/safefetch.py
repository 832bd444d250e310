"""Fetching a URL someone typed, without letting them aim our servers at our own network (SSRF).

Only http and https on allowed ports. The host is resolved once; every address it resolves to must be
a public one (not private, loopback, link-local, the cloud metadata address, multicast, reserved,
shared, nor an IPv6 form that embeds one of those), and the request then connects to that checked
address, keeping the name for the Host header and for TLS (SNI and certificate), so a second DNS answer
cannot swap the target (rebinding). Numeric hosts in the spellings browsers and libc accept (`127.1`,
`0x7f000001`, `2130706433`, `0177.0.0.1`) are read the way they would be, judged on what they mean,
and refused unless written as a plain dotted quad. Redirects are followed by hand, each hop checked
again. The body is capped in bytes and the whole fetch in time.

Call it from workers, never from a web request: a slow server would hold a web process.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

Resolver = Callable[[str, int], list[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
REDIRECTS = {301, 302, 303, 307, 308}


class FetchRefused(Exception):
    """We would not fetch this address, or the fetch failed; the message is safe to show the user."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the production resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise FetchRefused(f"{host} could not be found (no DNS answer).") from None
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Policy:
    """What may be fetched. `loopback_hosts` names local development/test servers (e.g. `127.0.0.1`) that may
    resolve to loopback on any port; it is empty in production."""

    allowed_ports: frozenset[int] = frozenset({80, 443})
    loopback_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    timeout_seconds: float = 30.0
    max_redirects: int = 5
    resolver: Resolver = field(default=system_resolver)
    # Certificates are checked against the host name; tests pass a context that trusts their own CA.
    verify: ssl.SSLContext | bool = True


@dataclass(frozen=True)
class Destination:
    """A checked URL: connect to `address`, speak to `host`."""

    url: httpx.URL
    host: str
    port: int
    address: Address

    @property
    def connect_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address), port=self.port)

    @property
    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.url.scheme] == self.port
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if default else f"{name}:{self.port}"


@dataclass(frozen=True)
class Fetched:
    url: str  # where the body finally came from (after redirects)
    content_type: str  # as the server said; never trusted for what the bytes are
    data: bytes


def why_not_public(address: Address) -> str | None:
    """Why `address` is not a public address we may connect to, or None when it is."""
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = why_not_public(embedded)
            return f"{reason} (inside IPv6 {address})" if reason else None
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (carrier NAT)", address in SHARED_ADDRESS_SPACE),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not a public address", not address.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), which is where packets go."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_ipv4_like_a_browser(host: str) -> ipaddress.IPv4Address | None:
    """The address a host that ends in a number means to browsers and inet_aton (WHATWG URL "IPv4 parser"),
    or None when the host is a name. Raises FetchRefused for a numeric host that is not a valid address."""
    labels = host.split(".")
    if labels and labels[-1] == "":
        labels.pop()
    if not labels or not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise FetchRefused(f"{host} is not a valid address.")
    try:
        numbers = [_number(label) for label in labels]
    except ValueError:
        raise FetchRefused(f"{host} is not a valid address.") from None
    *parts, last = numbers
    if any(n > 255 for n in parts) or last >= 256 ** (5 - len(numbers)):
        raise FetchRefused(f"{host} is not a valid address.")
    value = last
    for i, n in enumerate(parts):
        value += n * 256 ** (3 - i)
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    if label.lower().startswith("0x"):
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isdigit() and label.isascii()


def _number(label: str) -> int:
    if label.lower().startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # ValueError for 08, 09: not a number to the parser either
    return int(label)


def parse(url: str | httpx.URL, policy: Policy) -> tuple[httpx.URL, str, int]:
    """The URL, its host and port, if it may be fetched at all; no DNS lookup (safe in a web request)."""
    text = str(url).strip()
    if any(c in text for c in "\\\t\r\n ") or not text.isprintable():
        raise FetchRefused("That address has spaces or characters an address cannot have.")
    try:
        # httpx turns away some numeric spellings (0177.0.0.1) as malformed; read them first, so the reason
        # given is what they point at.
        raw_host = (urlsplit(text).hostname or "").rstrip(".")
        if ":" not in raw_host and raw_host not in policy.loopback_hosts:
            _literal_address(raw_host, local=False)
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchRefused(f"That is not a valid address ({exc}).") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise FetchRefused("Only http:// and https:// addresses can be fetched.")
    if parsed.userinfo:
        raise FetchRefused("Addresses with a user name or password in them are not fetched.")
    host = parsed.host.rstrip(".").lower()
    if not host:
        raise FetchRefused("That address has no host.")
    return parsed, host, parsed.port or DEFAULT_PORTS[parsed.scheme]


def check(url: str | httpx.URL, policy: Policy) -> Destination:
    """Parse and check `url`, resolve its host once, and return where to connect; FetchRefused says why not."""
    parsed, host, port = parse(url, policy)
    local = host in policy.loopback_hosts
    addresses = _addresses(host, port, policy, local)  # resolved once: what is checked is what we connect to
    for address in addresses:
        reason = why_not_public(address)
        if reason and not (local and address.is_loopback):
            raise FetchRefused(f"Refused: address {address} is {reason}.")
    if not local and port not in policy.allowed_ports:
        raise FetchRefused(f"Port {port} is not allowed; use an address on port 80 or 443.")
    return Destination(url=parsed, host=host, port=port, address=addresses[0])


def _addresses(host: str, port: int, policy: Policy, local: bool) -> list[Address]:
    literal = _literal_address(host, local)
    if literal is not None:
        return [literal]
    resolved = policy.resolver(host, port)
    if not resolved:
        raise FetchRefused(f"{host} could not be found (no DNS answer).")
    try:
        return [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
    except ValueError:
        raise FetchRefused(f"{host} resolved to something that is not an address.") from None


def _literal_address(host: str, local: bool) -> Address | None:
    if ":" in host:  # IPv6 (httpx has already taken the brackets off)
        if "%" in host:
            raise FetchRefused("IPv6 zone identifiers are not allowed in addresses.")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise FetchRefused(f"{host} is not a valid IPv6 address.") from None
    address = parse_ipv4_like_a_browser(host)
    if address is None:
        return None
    reason = why_not_public(address)
    if reason and not (local and address.is_loopback):
        raise FetchRefused(f"Refused: address {address} is {reason} (written as {host}).")
    if str(address) != host:
        raise FetchRefused(f"Write the address as {address}, not {host}.")
    return address


def fetch(url: str, policy: Policy, *, transport: httpx.BaseTransport | None = None) -> Fetched:
    """GET `url` under `policy`: each hop checked, at most `max_redirects` of them, the body capped."""
    deadline = time.monotonic() + policy.timeout_seconds
    current: str | httpx.URL = url
    with httpx.Client(transport=transport, follow_redirects=False, trust_env=False, verify=policy.verify) as client:
        for _hop in range(policy.max_redirects + 1):
            destination = check(current, policy)
            with _open(client, destination, deadline) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    current = destination.url.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchRefused(f"{destination.host} answered HTTP {response.status_code}.")
                data = _read_capped(response, policy.max_bytes, deadline)
                return Fetched(str(destination.url), response.headers.get("content-type", ""), data)
    raise FetchRefused(f"Too many redirects (more than {policy.max_redirects}).")


@contextmanager
def _open(client: httpx.Client, destination: Destination, deadline: float) -> Iterator[httpx.Response]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchRefused("The download took too long.")
    extensions: dict[str, Any] = {}
    if destination.url.scheme == "https":
        extensions["sni_hostname"] = destination.host  # certificate checked against the name, not the IP
    request = client.build_request(
        "GET",
        destination.connect_url,
        headers={"Host": destination.host_header},
        extensions=extensions,
        timeout=httpx.Timeout(remaining),
    )
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException:
        raise FetchRefused(f"{destination.host} did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise FetchRefused(f"Could not reach {destination.host} ({type(exc).__name__}).") from None
    try:
        yield response
    finally:
        response.close()


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"The file is {int(declared) / 1e6:.1f} MB; at most {max_bytes / 1e6:.0f} MB is fetched.")
    chunks, total = [], 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise FetchRefused(f"The file is larger than {max_bytes / 1e6:.0f} MB, the most we fetch.")
            if time.monotonic() > deadline:
                raise FetchRefused("The download took too long.")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise FetchRefused("The download took too long.") from None
    except httpx.HTTPError as exc:
        raise FetchRefused(f"The download failed ({type(exc).__name__}).") from None
    return b"".join(chunks)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that checks every request's address under `policy` and connects to the checked IP.

    For adapters that talk to servers a person named (a Mastodon instance, a Bluesky PDS). Redirects are
    not followed here (the adapters' clients do not follow them either). One inner connection pool per
    host name, so a TLS connection verified for one name is never reused for another on the same IP.
    """

    MAX_POOLS = 256

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            destination = check(request.url, self.policy)
        except FetchRefused as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        request.url = destination.connect_url
        request.headers["Host"] = destination.host_header
        if destination.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": destination.host}
        return self._pool(destination.host).handle_request(request)

    def _pool(self, host: str) -> httpx.HTTPTransport:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                if len(self._pools) >= self.MAX_POOLS:
                    oldest = next(iter(self._pools))
                    self._pools.pop(oldest).close()
                pool = self._pools[host] = httpx.HTTPTransport(verify=self.policy.verify)
            return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def app_policy(max_bytes: int = Policy.max_bytes) -> Policy:
    """The policy from this app's settings (FETCH_*); tests may put a resolver in app.extensions["fetch_resolver"]."""
    from flask import current_app

    config = current_app.config
    return Policy(
        allowed_ports=frozenset(config["FETCH_ALLOWED_PORTS"]),
        loopback_hosts=frozenset(config["FETCH_LOOPBACK_HOSTS"]),
        max_bytes=max_bytes,
        timeout_seconds=config["FETCH_TIMEOUT_SECONDS"],
        resolver=current_app.extensions.get("fetch_resolver", system_resolver),
    )
