"""Safe fetching of user-given URLs: every way of naming our own network is refused, and nothing leaves the machine.

Public names are answered by a local resolver stub; the only server is a local file host on 127.0.0.1,
reached through a name the policy allows to be local (as `make run`'s fakes are).
"""

from __future__ import annotations

import httpx
import pytest

from saas.safefetch import FetchRefused, GuardedTransport, Policy, check, fetch, parse_ipv4_like_a_browser
from tests.fakes.dns import StubResolver
from tests.fakes.files import FakeFileHost
from tests.fakes.tls import TlsFileServer

PUBLIC = StubResolver(
    {
        "intranet.example": ["10.0.0.5"],
        "mixed.example": ["93.184.215.14", "192.168.1.10"],
        "shared.example": ["100.64.0.1"],
        "photos.example": ["93.184.215.14"],
    }
)
POLICY = Policy(resolver=PUBLIC)


def local_policy(**kwargs) -> Policy:
    """files.example is the local file host (on 127.0.0.1), allowed to be local as `make run`'s fakes are."""
    resolver = StubResolver({"files.example": ["127.0.0.1"], "intranet.example": ["10.0.0.5"]})
    return Policy(resolver=resolver, loopback_hosts=frozenset({"files.example"}), **kwargs)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is loopback"),
        ("http://127.1/", "127.0.0.1 is loopback"),
        ("http://0x7f000001/", "127.0.0.1 is loopback"),
        ("http://2130706433/", "127.0.0.1 is loopback"),
        ("http://0177.0.0.1/", "127.0.0.1 is loopback"),
        ("http://[::1]/", "::1 is loopback"),
        ("http://[::ffff:127.0.0.1]/", "is loopback (inside IPv6"),
        ("http://[2002:7f00:1::]/", "is loopback (inside IPv6"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
        ("http://[fd00:ec2::254]/", "the cloud metadata address"),
        ("http://intranet.example/cat.png", "10.0.0.5 is private"),
        ("http://mixed.example/", "192.168.1.10 is private"),
        ("http://shared.example/", "100.64.0.1 is shared"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
    ],
)
def test_addresses_of_our_own_network_are_refused(url, reason):
    with pytest.raises(FetchRefused, match="Refused: address") as refused:
        check(url, POLICY)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "Only http:// and https://"),
        ("gopher://photos.example/", "Only http:// and https://"),
        ("http://user:pw@photos.example/", "user name or password"),
        ("http://photos.example:6379/", "Port 6379 is not allowed"),
        ("http://photos.example\\@127.0.0.1/", "characters an address cannot have"),
        ("http://0x08080808/", "Write the address as 8.8.8.8"),
        ("http://1.2.3.4.5/", "not a valid address"),
        ("http://nowhere.example/", "could not be found"),
    ],
)
def test_other_bad_addresses_are_refused_with_a_reason(url, message):
    with pytest.raises(FetchRefused, match=message):
        check(url, POLICY)


def test_numeric_hosts_are_read_as_browsers_read_them():
    assert str(parse_ipv4_like_a_browser("127.1")) == "127.0.0.1"
    assert str(parse_ipv4_like_a_browser("0x7f.1")) == "127.0.0.1"
    assert str(parse_ipv4_like_a_browser("10.0.1")) == "10.0.0.1"
    assert parse_ipv4_like_a_browser("cafe.example") is None
    assert parse_ipv4_like_a_browser("1e100.net") is None


def test_a_public_name_is_checked_and_resolved_once():
    resolver = StubResolver({"photos.example": ["93.184.215.14"]})
    destination = check("https://Photos.Example/cat.png", Policy(resolver=resolver))
    assert resolver.lookups == ["photos.example"]
    assert str(destination.address) == "93.184.215.14"
    assert destination.connect_url.host == "93.184.215.14"
    assert destination.host_header == "photos.example"


def test_fetch_connects_to_the_checked_address_with_the_name_in_host():
    with FakeFileHost() as host:
        host.put("/cat.png", b"meow", "image/png")
        policy = local_policy()
        fetched = fetch(f"http://files.example:{host.port}/cat.png", policy)
    assert fetched.data == b"meow"
    assert host.hosts_seen == [f"files.example:{host.port}"]
    assert policy.resolver.lookups == ["files.example"]


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/admin",
        "http://localhost/admin",
        "http://intranet.example/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "file:///etc/passwd",
        "http://2130706433/",
    ],
)
def test_a_redirect_to_our_own_network_is_refused(location):
    with FakeFileHost() as host:
        host.redirect("/go", location)
        with pytest.raises(FetchRefused, match="Refused: address|could not be found|Only http"):
            fetch(f"http://files.example:{host.port}/go", local_policy())
        assert len(host.hosts_seen) == 1  # the redirect was read; the target never asked


def test_the_allowed_local_name_does_not_open_loopback_to_other_spellings():
    policy = Policy(resolver=PUBLIC, loopback_hosts=frozenset({"127.0.0.1"}))
    check("http://127.0.0.1:5000/", policy)  # the named local host, as `make run` uses it
    for url in ("http://127.1:5000/", "http://2130706433:5000/", "http://[::1]:5000/", "http://127.0.0.2:5000/"):
        with pytest.raises(FetchRefused):
            check(url, policy)


def test_redirects_are_followed_a_few_times_then_refused():
    with FakeFileHost() as host:
        base = f"http://files.example:{host.port}"
        for n in range(7):
            host.redirect(f"/r{n}", f"{base}/r{n + 1}")
        host.put("/r7", b"end", "text/plain")
        policy = local_policy()
        with pytest.raises(FetchRefused, match="Too many redirects"):
            fetch(f"{base}/r0", policy)
        assert fetch(f"{base}/r3", policy).data == b"end"


def test_a_body_over_the_cap_is_refused():
    with FakeFileHost() as host:
        host.put("/big.bin", b"x" * 5000, "application/octet-stream")
        with pytest.raises(FetchRefused, match="at most|larger than"):
            fetch(f"http://files.example:{host.port}/big.bin", local_policy(max_bytes=1000))


def test_a_server_that_does_not_answer_in_time_is_given_up():
    with FakeFileHost(latency=2.0) as host:
        host.put("/slow.png", b"slow", "image/png")
        with pytest.raises(FetchRefused, match="did not answer in time|took too long"):
            fetch(f"http://files.example:{host.port}/slow.png", local_policy(timeout_seconds=0.3))


def test_the_guarded_transport_checks_every_request_and_keeps_the_name():
    """What the Mastodon and Bluesky adapters send through: each call checked, connected to the checked IP."""
    with FakeFileHost() as host:
        host.put("/api/v1/instance", b"{}", "application/json")
        with httpx.Client(transport=GuardedTransport(local_policy())) as client:
            assert client.get(f"http://files.example:{host.port}/api/v1/instance").status_code == 200
            for url in (f"http://127.0.0.1:{host.port}/", "http://intranet.example/", "http://[::ffff:7f00:1]/"):
                with pytest.raises(httpx.ConnectError, match="Refused: address"):
                    client.get(url)
    assert host.hosts_seen == [f"files.example:{host.port}"]


def test_https_connects_to_the_checked_address_but_verifies_the_name():
    with TlsFileServer("files.example", b"over tls") as server:
        policy = local_policy(verify=server.ca_context())
        fetched = fetch(f"https://files.example:{server.port}/cat.png", policy)
        assert fetched.data == b"over tls"
        assert server.sni_names == ["files.example"]  # the name in the TLS hello, though we dialled 127.0.0.1


def test_https_with_a_certificate_for_another_name_is_refused():
    with TlsFileServer("someone-else.example", b"not yours") as server:
        policy = local_policy(verify=server.ca_context())
        with pytest.raises(FetchRefused, match="Could not reach files.example"):
            fetch(f"https://files.example:{server.port}/cat.png", policy)


def test_the_guarded_transport_speaks_tls_to_the_name_at_the_checked_address():
    with TlsFileServer("files.example", b"{}") as server:
        transport = GuardedTransport(local_policy(verify=server.ca_context()))
        with httpx.Client(transport=transport) as client:
            assert client.get(f"https://files.example:{server.port}/api/v1/instance").content == b"{}"
    assert server.sni_names == ["files.example"]
