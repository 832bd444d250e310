"""SandboxPublisher against FakeSandboxNetwork over real HTTP: what the pipeline sees when things go right and wrong."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from publishers.base import Credentials, OutboundPost
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    InvalidPost,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from publishers.sandbox import SandboxPublisher
from tests.fakes.network import FakeSandboxNetwork, parse_iso

POSTS = "/api/v1/posts"


@dataclass(frozen=True)
class Channel:
    handle: str
    account_id: str
    credentials: Credentials


@pytest.fixture
def network() -> Iterator[FakeSandboxNetwork]:
    # Mounted under /sandbox like the in-app server, so URL joining is exercised too.
    with FakeSandboxNetwork(mount="/sandbox") as fake:
        yield fake


@pytest.fixture
def publisher(network: FakeSandboxNetwork) -> Iterator[SandboxPublisher]:
    adapter = SandboxPublisher({"base_url": network.base_url, "timeout_seconds": "5"})
    yield adapter
    adapter.close()


def connect(network: FakeSandboxNetwork, handle: str) -> Channel:
    account_id, access, refresh = network.add_account(handle)
    return Channel(handle, account_id, Credentials(access_token=access, refresh_token=refresh))


@pytest.fixture
def channel(network: FakeSandboxNetwork) -> Channel:
    return connect(network, "bluebell")


def post_requests(network: FakeSandboxNetwork) -> list[str]:
    return [entry.outcome for entry in network.journal.entries("POST", POSTS)]


# -- publishing and idempotency --------------------------------------------------------------------------------------


def test_publish_returns_remote_id_url_and_time(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)

    result = publisher.publish(OutboundPost("Fresh loaves at 8"), channel.credentials, "key-1")

    [post] = network.posts("bluebell")
    assert result.remote_id == post.id
    assert result.url == f"{network.base_url}/@bluebell/{post.id}"
    assert result.published_at is not None and result.published_at >= before
    assert post.text == "Fresh loaves at 8"
    [entry] = network.journal.entries("POST", POSTS)
    assert entry.headers["idempotency-key"] == "key-1"
    assert entry.body == {"text": "Fresh loaves at 8", "media_urls": []}
    assert entry.response_headers["X-RateLimit-Limit"] == "300"


def test_same_idempotency_key_twice_makes_one_post(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    post = OutboundPost("Croissants are back", media_urls=("https://img.example/c.jpg",))

    first = publisher.publish(post, channel.credentials, "key-1")
    second = publisher.publish(post, channel.credentials, "key-1")

    assert second == first
    assert post_requests(network) == ["committed", "replayed"]
    assert [e.status for e in network.journal.entries("POST", POSTS)] == [201, 200]
    assert network.committed_count_by_key() == {("bluebell", "key-1"): 1}


def test_idempotency_keys_belong_to_one_account(network: FakeSandboxNetwork, publisher: SandboxPublisher) -> None:
    bluebell, rosehip = connect(network, "bluebell"), connect(network, "rosehip")

    a = publisher.publish(OutboundPost("Open today"), bluebell.credentials, "shared-key")
    b = publisher.publish(OutboundPost("Open today"), rosehip.credentials, "shared-key")

    assert a.remote_id != b.remote_id
    assert network.duplicates() == {}


def test_a_key_is_forgotten_after_an_hour(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    post = OutboundPost("Sourdough")
    publisher.publish(post, channel.credentials, "key-1")
    network.advance_clock(timedelta(hours=1, seconds=1))

    publisher.publish(post, channel.credentials, "key-1")

    # Why the pipeline must read back before retrying outside the window.
    assert network.duplicates() == {("bluebell", "key-1"): 2}


def test_forgetting_keys_makes_a_retry_post_again(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    publisher.publish(OutboundPost("Rye"), channel.credentials, "key-1")
    assert network.forget_idempotency_keys("bluebell") == 1

    publisher.publish(OutboundPost("Rye"), channel.credentials, "key-1")

    assert network.committed_count_by_key() == {("bluebell", "key-1"): 2}
    assert network.duplicate_texts() == {("bluebell", "Rye"): 2}


def test_dropped_response_is_outcome_unknown_and_same_key_retry_returns_the_original(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    post = OutboundPost("Sticky buns")
    network.controls.add_fault("commit_then_drop", method="POST", path=POSTS)

    with pytest.raises(OutcomeUnknown):
        publisher.publish(post, channel.credentials, "key-1")
    [created] = network.posts("bluebell")  # the network did make it

    result = publisher.publish(post, channel.credentials, "key-1")

    assert result.remote_id == created.id
    entries = network.journal.entries("POST", POSTS)
    assert [(e.outcome, e.fault, e.dropped) for e in entries] == [
        ("committed", "commit_then_drop", True),
        ("replayed", None, False),
    ]
    assert network.committed_count_by_key() == {("bluebell", "key-1"): 1}


def test_hung_response_times_out_as_outcome_unknown(network: FakeSandboxNetwork, channel: Channel) -> None:
    impatient = SandboxPublisher({"base_url": network.base_url, "timeout_seconds": "0.3"})
    network.controls.add_fault("commit_then_hang", method="POST", path=POSTS)
    try:
        with pytest.raises(OutcomeUnknown):
            impatient.publish(OutboundPost("Scones"), channel.credentials, "key-1")
        network.journal.wait_for(lambda entries: entries[0].outcome == "committed", method="POST", path_prefix=POSTS)
        assert network.journal.entries("POST", POSTS)[0].in_flight  # still held
        network.controls.release_hangs()
        [entry] = network.journal.wait_for(lambda entries: not entries[0].in_flight, method="POST", path_prefix=POSTS)
        assert entry.dropped and entry.status is None

        assert (
            impatient.publish(OutboundPost("Scones"), channel.credentials, "key-1").remote_id
            == entry.details["post_id"]
        )
        assert network.duplicates() == {}
    finally:
        impatient.close()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_on_publish_is_outcome_unknown(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel, status: int
) -> None:
    network.controls.add_fault("status", method="POST", path=POSTS, status=status, body={"error": "upstream"})

    with pytest.raises(OutcomeUnknown) as caught:
        publisher.publish(OutboundPost("Baguettes"), channel.credentials, "key-1")

    assert caught.value.http_status == status
    assert network.posts() == []


def test_server_error_on_a_read_is_transient(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.controls.add_fault("status", method="GET", path="/api/v1/me", status=503)

    with pytest.raises(TransientError):
        publisher.profile(channel.credentials)
    assert publisher.profile(channel.credentials).handle == "bluebell"  # the fault was for one request only


def test_refused_publish_is_outcome_unknown_and_commits_nothing(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.controls.add_fault("refuse", method="POST", path=POSTS)

    with pytest.raises(OutcomeUnknown):  # from outside, a closed socket could have come after the commit
        publisher.publish(OutboundPost("Muffins"), channel.credentials, "key-1")

    assert network.posts() == []
    assert post_requests(network) == ["refused"]


def test_refused_read_is_transient(network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel) -> None:
    network.controls.add_fault("refuse", path="/api/")

    with pytest.raises(TransientError):
        publisher.profile(channel.credentials)


def test_server_down_is_transient_and_same_port_comes_back(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    publisher.profile(channel.credentials)  # leaves a keep-alive connection in the pool
    port = network.port

    with network.outage():
        with pytest.raises(TransientError):
            publisher.publish(OutboundPost("Bagels"), channel.credentials, "key-1")
        with pytest.raises(TransientError):
            publisher.profile(channel.credentials)

    assert network.port == port
    assert publisher.publish(OutboundPost("Bagels"), channel.credentials, "key-1").remote_id
    assert len(network.posts()) == 1


# -- validation ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "reason"),
    [
        (OutboundPost("x" * 501), "Text is longer than 500 characters"),
        (OutboundPost("   "), "Text can't be blank"),
        (OutboundPost("Five", media_urls=tuple(f"https://img.example/{i}.jpg" for i in range(5))), "Too many media"),
    ],
)
def test_refused_content_is_invalid_post_with_the_network_reason(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel, post: OutboundPost, reason: str
) -> None:
    with pytest.raises(InvalidPost) as caught:
        publisher.publish(post, channel.credentials, "key-1")

    assert caught.value.http_status == 422
    assert reason in caught.value.message
    assert network.posts() == []


def test_limits_count_code_points(network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel) -> None:
    publisher.publish(OutboundPost("🥐" * 500), channel.credentials, "key-1")
    publisher.publish(OutboundPost("", media_urls=("https://img.example/1.jpg",)), channel.credentials, "key-2")

    assert len(network.posts()) == 2


# -- rate limits -----------------------------------------------------------------------------------------------------


def test_account_rate_limit_is_rate_limited_for_the_channel_until_reset(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.set_rate_limit("account", 2, timedelta(minutes=5))
    publisher.publish(OutboundPost("One"), channel.credentials, "key-1")
    publisher.publish(OutboundPost("Two"), channel.credentials, "key-2")

    with pytest.raises(RateLimited) as caught:
        publisher.publish(OutboundPost("Three"), channel.credentials, "key-3")

    refused = network.journal.entries("POST", POSTS)[-1]
    assert refused.status == 429
    assert refused.response_headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Scope" not in refused.response_headers
    reset = parse_iso(refused.response_headers["X-RateLimit-Reset"])
    assert reset <= caught.value.reset_at <= reset + timedelta(seconds=2)  # Retry-After is whole seconds
    assert timedelta(minutes=4) < reset - datetime.now(UTC) <= timedelta(minutes=5)
    assert caught.value.scope == "channel"
    assert len(network.posts()) == 2


def test_app_rate_limit_is_rate_limited_for_the_whole_app(
    network: FakeSandboxNetwork, publisher: SandboxPublisher
) -> None:
    bluebell, rosehip = connect(network, "bluebell"), connect(network, "rosehip")
    network.set_rate_limit("app", 2, timedelta(seconds=90))
    publisher.publish(OutboundPost("One"), bluebell.credentials, "key-1")
    publisher.publish(OutboundPost("Two"), rosehip.credentials, "key-2")

    with pytest.raises(RateLimited) as caught:
        publisher.profile(bluebell.credentials)

    refused = network.journal.entries()[-1]
    assert refused.response_headers["X-RateLimit-Scope"] == "app"
    reset = parse_iso(refused.response_headers["X-RateLimit-Reset"])
    assert reset <= caught.value.reset_at <= reset + timedelta(seconds=2)
    assert caught.value.scope == "app"


def test_every_api_answer_carries_rate_limit_headers(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    publisher.profile(channel.credentials)
    publisher.publish(OutboundPost("One"), channel.credentials, "key-1")
    with pytest.raises(InvalidPost):
        publisher.publish(OutboundPost(""), channel.credentials, "key-2")
    with pytest.raises(AuthRevoked):
        publisher.profile(Credentials(access_token="nonsense"))

    for entry in network.journal.entries(path_prefix="/api/"):
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(entry.response_headers)
    assert [e.response_headers["X-RateLimit-Remaining"] for e in network.journal.entries(path_prefix="/api/")][:3] == [
        "299",
        "298",
        "297",
    ]


# -- tokens ----------------------------------------------------------------------------------------------------------


def test_expired_token_then_refresh_gives_working_tokens_and_retires_the_old_ones(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.expire_token(channel.credentials.access_token)
    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Pretzels"), channel.credentials, "key-1")

    before = datetime.now(UTC)
    renewed = publisher.refresh(channel.credentials)
    after = datetime.now(UTC)

    assert renewed.access_token != channel.credentials.access_token
    assert renewed.refresh_token not in (None, channel.credentials.refresh_token)
    assert renewed.expires_at is not None
    assert before + timedelta(hours=2) <= renewed.expires_at <= after + timedelta(hours=2)
    assert publisher.publish(OutboundPost("Pretzels"), renewed, "key-1").remote_id
    with pytest.raises(AuthRevoked):
        publisher.profile(channel.credentials)
    with pytest.raises(AuthRevoked):  # the old refresh token was rotated away: invalid_grant
        publisher.refresh(channel.credentials)
    assert network.journal.entries("POST", "/oauth/token")[0].body["grant_type"] == "refresh_token"


def test_revoked_token_is_auth_revoked_and_cannot_be_refreshed(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.revoke_account("bluebell")

    with pytest.raises(AuthRevoked):
        publisher.publish(OutboundPost("Danish"), channel.credentials, "key-1")
    with pytest.raises(AuthRevoked):
        publisher.refresh(channel.credentials)
    assert network.posts() == []


def test_no_refresh_token_is_auth_revoked(publisher: SandboxPublisher, channel: Channel) -> None:
    with pytest.raises(AuthRevoked):
        publisher.refresh(Credentials(access_token=channel.credentials.access_token))


# -- reading back, profile, delete -----------------------------------------------------------------------------------


def test_find_published_finds_our_post_by_text_since_a_time(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    ours = OutboundPost("Cinnamon rolls at noon")
    publisher.publish(OutboundPost("Something else"), channel.credentials, "key-0")
    older = publisher.publish(ours, channel.credentials, "key-1")
    newer = publisher.publish(ours, channel.credentials, "key-2")

    assert publisher.find_published(ours, channel.credentials, "key-2", since) == newer
    assert newer != older
    assert publisher.find_published(OutboundPost("Cinnamon rolls"), channel.credentials, "key-3", since) is None
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert publisher.find_published(ours, channel.credentials, "key-2", later) is None
    assert network.journal.entries("GET", POSTS)[0].query["since"].endswith("Z")


def test_find_published_only_sees_this_account(network: FakeSandboxNetwork, publisher: SandboxPublisher) -> None:
    bluebell, rosehip = connect(network, "bluebell"), connect(network, "rosehip")
    since = datetime.now(UTC) - timedelta(seconds=1)
    publisher.publish(OutboundPost("Shared words"), rosehip.credentials, "key-1")

    assert publisher.find_published(OutboundPost("Shared words"), bluebell.credentials, "key-1", since) is None


def test_profile_is_the_connected_account(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    profile = publisher.profile(channel.credentials)

    assert profile.remote_id == channel.account_id
    assert profile.handle == "bluebell"
    assert profile.display_name == "Bluebell"
    assert profile.url == f"{network.base_url}/@bluebell"


def test_delete_removes_the_post_and_is_idempotent(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    result = publisher.publish(OutboundPost("Gone soon"), channel.credentials, "key-1")

    publisher.delete(result.remote_id, channel.credentials)
    publisher.delete(result.remote_id, channel.credentials)

    assert network.posts() == []
    assert [e.status for e in network.journal.entries("DELETE")] == [200, 404]


# -- the fake itself -------------------------------------------------------------------------------------------------


def test_latency_applies_to_many_requests_at_once(
    network: FakeSandboxNetwork, publisher: SandboxPublisher, channel: Channel
) -> None:
    network.controls.set_latency(0.2)
    start = threading.Barrier(50)

    def publish(n: int) -> str:
        start.wait()
        return publisher.publish(OutboundPost(f"Batch {n}"), channel.credentials, f"key-{n}").remote_id

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(publish, range(50)))

    assert len(set(ids)) == 50
    entries = network.journal.entries("POST", POSTS)
    assert all(e.answered_at is not None and e.answered_at - e.received_at >= timedelta(seconds=0.2) for e in entries)
    # Serialised, at most one would be in flight; 50 at 0.2 s each would take 10 s.
    assert network.journal.max_in_flight("POST", POSTS) >= 25
    assert all(count == 1 for count in network.committed_count_by_key().values())


def test_control_api_drives_the_fake_from_another_process(network: FakeSandboxNetwork) -> None:
    control = httpx.Client(base_url=network.control_url + "/")
    try:
        account = control.post("accounts", json={"handle": "rosehip"}).json()
        token = {"Authorization": f"Bearer {account['access_token']}"}
        assert control.post("latency", json={"ms": 10}).json() == {"latency_seconds": 0.01}
        control.post("faults", json={"kind": "status", "method": "POST", "path": POSTS, "status": 502})
        control.put("rate_limits", json={"scope": "account", "limit": 100, "window_seconds": 60})

        api = httpx.Client(base_url=network.base_url + "/", headers=token)
        assert api.post("api/v1/posts", json={"text": "hi"}, headers={"Idempotency-Key": "k"}).status_code == 502
        assert api.post("api/v1/posts", json={"text": "hi"}, headers={"Idempotency-Key": "k"}).status_code == 201
        assert api.post("api/v1/posts", json={"text": "hi"}, headers={"Idempotency-Key": "k"}).status_code == 200
        assert api.get("api/v1/me").headers["X-RateLimit-Limit"] == "100"
        control.post("tokens/expire", json={"access_token": account["access_token"]})
        assert api.get("api/v1/me").json() == {"error": "token_expired"}
        api.close()

        summary = control.get("summary").json()
        assert summary["posts_by_key"] == [{"handle": "rosehip", "key": "k", "posts": 1}]
        assert summary["duplicates"] == []
        assert summary["requests"]["total"] == 5
        assert summary["requests"]["by_outcome"] == {
            "fault": 1,
            "committed": 1,
            "replayed": 1,
            "read": 1,
            "rejected": 1,
        }
        assert control.post("idempotency/forget", json={"handle": "rosehip"}).json() == {"forgotten": 1}
        assert control.post("faults", json={"kind": "explode"}).status_code == 400
    finally:
        control.close()


def test_standalone_process_prints_its_url_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.network", "--port", "0", "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/_control/health").json() == {"ok": True}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
