"""Fault tests with real processes: PostgreSQL, Redis, `flask --app wsgi worker` and `flask --app wsgi clock`.

Each test drives the process set of production (tests/publishing/processes.py) against the fake Sandbox
network, breaks something for real (SIGKILL, a Redis wipe, a PostgreSQL restart, a 429 storm, two
dispatchers at once) and then judges the outcome by the database and by the fake network's own record:
every target final, nothing published twice, nothing published early. See reliability.md §1.2, §2.2, §6, §7.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from saas.publishing.dispatch import PUBLISH_QUEUE
from tests.fakes.network import FakeSandboxNetwork, parse_iso
from tests.fakes.server import JournalEntry
from tests.publishing.processes import Child, Stack, utcnow

POSTS = "/api/v1/posts"


@pytest.fixture(scope="module")
def own_servers() -> Iterator[Stack]:
    """PostgreSQL and Redis of their own for this module (they get restarted here), torn down at its end."""
    stack = Stack.create(lease_seconds=5, network_timeout=3.0)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def network() -> Iterator[FakeSandboxNetwork]:
    """This test's fake Sandbox network (overrides conftest's, which points the in-process app at it)."""
    with FakeSandboxNetwork(mount="/sandbox") as fake:
        yield fake


@pytest.fixture
def stack(own_servers: Stack, network: FakeSandboxNetwork) -> Iterator[Stack]:
    """A clean stack publishing to this test's fake network; every process it started is stopped afterwards."""
    own_servers.reset()
    own_servers.use_network(network)
    try:
        yield own_servers
    finally:
        own_servers.stop_all()  # before the fake network stops (fixtures tear down in reverse)
        print(own_servers.logs(6000))  # shown only when the test failed


# -- helpers ----------------------------------------------------------------------------------------------------------


def post_requests(network: FakeSandboxNetwork) -> list[JournalEntry]:
    return network.journal.entries("POST", POSTS)


def key_of(entry: JournalEntry) -> str:
    return entry.headers.get("idempotency-key", "")


def assert_published_once(stack: Stack, network: FakeSandboxNetwork, expected: int) -> None:
    """Every target published, each by exactly one post on the network, under its own key."""
    targets = stack.targets()
    assert len(targets) == expected
    states = Counter(t.state for t in targets)
    assert states == {"published": expected}, states
    assert network.duplicates() == {}
    assert network.duplicate_texts() == {}
    assert network.committed_count_by_key() == {(t.handle, t.idempotency_key): 1 for t in targets}
    remote_ids = {(p.handle, p.idempotency_key): p.id for p in network.posts()}
    assert {(t.handle, t.idempotency_key): t.remote_id for t in targets} == remote_ids


def seed(stack: Stack, *, channels: int, posts: int, prefix: str, at: datetime | None = None) -> list[int]:
    """One tenant, `channels` channels, `posts` posts to all of them (channels × posts targets)."""
    tenant = stack.make_tenant(f"{prefix.title()} Workspace")
    channel_ids = [stack.connect(tenant, f"{prefix}{n}") for n in range(channels)]
    stack.schedule(tenant, channel_ids, [f"{prefix} post {n}" for n in range(posts)], at=at)
    return channel_ids


def start_worker_and_clock(stack: Stack, **env: object) -> tuple[Child, Child]:
    worker = stack.start_worker(wait=False, **env)
    clock = stack.start_clock(wait=False, **env)
    stack.wait_ready(worker, clock)
    return worker, clock


def kill_worker_mid_batch(stack: Stack, network: FakeSandboxNetwork, total: int) -> tuple[set[int], datetime, Child]:
    """Run worker + clock until the network has committed some posts and holds others in flight, then SIGKILL
    the worker (and its work horse). Returns the targets caught mid-attempt (`publishing`), the kill time and
    the clock, still running."""
    worker, clock = start_worker_and_clock(stack)
    # A request counts as in flight only in the first half of the network's latency, so it is still
    # held there when the kill lands a moment later: its target is caught with its request sent.
    fresh = timedelta(seconds=network.controls.latency / 2)

    def in_the_middle() -> bool:
        requests = post_requests(network)
        committed = sum(1 for e in requests if e.outcome == "committed")
        now = utcnow()
        in_flight = sum(1 for e in requests if e.in_flight and now - e.received_at < fresh)
        return 0 < committed < total and in_flight > 0

    stack.wait_until(
        in_the_middle,
        timeout=30,
        what="the network to have committed some posts while others are still in flight",
        interval=0.05,
        describe=lambda: f"journal: {network.journal.summary()}",
    )
    stack.kill(worker)
    killed_at = utcnow()
    caught = {t.id for t in stack.targets() if t.state == "publishing"}
    assert caught, f"the kill caught no attempt in flight: {dict(stack.state_counts())}"
    return caught, killed_at, clock


# -- a. a worker killed mid-batch -------------------------------------------------------------------------------------


def test_worker_killed_mid_batch_every_target_is_published_once(stack, network):
    network.controls.set_latency(1.0)
    seed(stack, channels=4, posts=10, prefix="kill")  # 40 targets, one batch

    caught, killed_at, _clock = kill_worker_mid_batch(stack, network, total=40)
    stack.start_worker()

    stack.wait_all_final(40, timeout=90)
    assert_published_once(stack, network, 40)
    # Lease recovery closed each interrupted attempt as abandoned ...
    abandoned = stack.rows("SELECT DISTINCT target_id FROM publish_attempts WHERE outcome = 'abandoned'")
    assert caught <= {a.target_id for a in abandoned}
    # ... and where the killed attempt had made its post on the network, the next one sent the same key and
    # the network answered with the original post instead of making a second one. (A request the kill cut off
    # before the network took it made no post: the next attempt makes it for the first time, nothing to replay.)
    caught_keys = {t.idempotency_key for t in stack.targets() if t.id in caught}
    reached = {
        key_of(e)
        for e in post_requests(network)
        if key_of(e) in caught_keys and e.received_at < killed_at and e.outcome == "committed"
    }
    assert reached, "no interrupted attempt had made its post before the kill, so no key was put to the test"
    replayed = {key_of(e) for e in post_requests(network) if e.outcome == "replayed" and e.received_at > killed_at}
    assert reached <= replayed, [
        (e.received_at, e.outcome, e.status, key_of(e))
        for e in post_requests(network)
        if key_of(e) in reached - replayed
    ]


# -- b. killed, and the network cannot tell -------------------------------------------------------------------------


def test_worker_killed_and_outcome_cannot_be_checked_becomes_unconfirmed(stack, network):
    network.controls.set_latency(1.0)
    seed(stack, channels=4, posts=10, prefix="murky")

    caught, killed_at, clock = kill_worker_mid_batch(stack, network, total=40)
    stack.wait_until(
        lambda: all(
            t.outcome_unknown_since is not None and t.state != "publishing" for t in stack.targets() if t.id in caught
        ),
        timeout=30,
        what=f"lease recovery to mark the outcome of {len(caught)} interrupted targets unknown",
    )
    stack.stop(clock)
    # As if recovery had come after the network's one-hour key window (for every target whose outcome is
    # unknown: on a loaded machine a lease may also have run out on an attempt that was merely slow) ...
    unknown = {
        t.id for t in stack.targets() if t.outcome_unknown_since is not None and t.state in ("scheduled", "queued")
    }
    assert caught <= unknown
    aged = stack.execute(
        "UPDATE post_targets SET outcome_unknown_since = now() - interval '2 hours' WHERE id = ANY(:ids)",
        ids=list(unknown),
    )
    assert aged == len(unknown)
    # ... when the network has forgotten the keys, and reading the account back fails.
    network.forget_idempotency_keys()
    network.controls.add_fault("status", method="GET", path=POSTS, status=503, times=1000, body={"error": "down"})

    worker = stack.start_worker(wait=False)
    clock = stack.start_clock(wait=False)
    stack.wait_ready(worker, clock)
    stack.wait_all_final(40, timeout=90)

    targets = stack.targets()
    for target in targets:
        if target.id in unknown:
            assert target.state == "unconfirmed", target
            assert "Check the account" in target.last_error, target.last_error
        else:
            assert target.state == "published", target
    assert network.duplicates() == {}
    assert network.duplicate_texts() == {}
    # Nothing was sent blindly for an interrupted target after the kill: only read-backs (which failed).
    unknown_keys = {t.idempotency_key for t in targets if t.id in unknown}
    assert [e for e in post_requests(network) if key_of(e) in unknown_keys and e.received_at > killed_at] == []
    assert network.journal.entries("GET", POSTS), "no read-back was attempted"


# -- c. Redis wiped and restarted while posts are due -----------------------------------------------------------------


def test_redis_flushed_and_restarted_mid_dispatch_publishes_everything_once(stack, network):
    network.controls.set_latency(0.1)
    worker, clock = start_worker_and_clock(stack)
    seed(stack, channels=10, posts=20, prefix="wiped", at=utcnow() + timedelta(seconds=3))  # 200 targets

    stack.wait_until(
        lambda: (counts := stack.state_counts())["queued"] + counts["publishing"] > 0,
        timeout=30,
        what="the first targets to be claimed",
    )
    stack.restart_redis()  # the claim's jobs are gone; the database still says `queued`

    stack.wait_all_final(200, timeout=120)
    assert_published_once(stack, network, 200)
    assert len(network.posts()) == 200
    # The lost jobs' targets came back through lease recovery, and nobody had to restart anything.
    recovered = sum(int(n) for n in re.findall(r"(\d+) recovered", clock.log()))
    assert recovered > 0, clock.tail()
    assert worker.alive() and clock.alive()


# -- d. PostgreSQL restarted during a burst ---------------------------------------------------------------------------


def test_postgres_restarted_mid_burst_needs_no_manual_action(stack, network):
    network.controls.set_latency(0.2)
    seed(stack, channels=10, posts=20, prefix="burst")  # 200 targets, due now
    worker, clock = start_worker_and_clock(stack)

    stack.wait_until(
        lambda: 20 <= stack.state_counts()["published"] < 200,
        timeout=60,
        what="the burst to be under way (some published, not all)",
    )
    stack.restart_postgres()

    stack.wait_all_final(200, timeout=120)
    assert_published_once(stack, network, 200)
    assert worker.alive() and clock.alive()  # the same processes carried on


# -- e. two dispatchers over 2,000 due targets ------------------------------------------------------------------------


def test_two_dispatchers_for_60_seconds_claim_each_target_exactly_once(stack, network):
    for n in range(4):
        seed(stack, channels=10, posts=50, prefix=f"race{n}x")  # 4 × 500 = 2,000 targets, all due
    target_ids = {t.id for t in stack.targets()}
    assert len(target_ids) == 2000

    # No workers; a lease no claim outlives, so nothing is re-claimed; claims of 50, so they contend
    # tick after tick (2,000 take them about 20 ticks each).
    env = {"PUBLISH_LEASE_SECONDS": 600, "PUBLISH_CLAIM_LIMIT": 50}
    clocks = [stack.start_clock(wait=False, **env) for _ in range(2)]
    stack.wait_ready(*clocks)
    started = time.monotonic()
    stack.wait_until(lambda: time.monotonic() - started >= 60, timeout=75, what="60 s of two dispatchers", interval=1)
    for clock in clocks:
        stack.stop(clock)

    jobs = Queue(PUBLISH_QUEUE, connection=stack.redis, serializer=JSONSerializer).jobs
    claims = Counter(target_id for job in jobs for _tenant_id, target_id in job.args[1])
    assert set(claims) == target_ids, f"{len(target_ids - set(claims))} targets in no job"
    assert [t for t, n in claims.items() if n != 1] == []
    token_of = {target_id: job.args[0] for job in jobs for _tenant_id, target_id in job.args[1]}
    targets = stack.targets()
    assert Counter(t.state for t in targets) == {"queued": 2000}
    assert all(t.claim_token == token_of[t.id] for t in targets)
    for clock in clocks:  # both claimed, tick after tick: the race was really run
        assert clock.log().count("dispatched") >= 3, clock.tail()


# -- f. a 429 storm on one channel ------------------------------------------------------------------------------------


def test_429_storm_on_one_channel_delays_no_other_channel_or_tenant(stack, network):
    # The account limit equals a channel's concurrency (4 for Sandbox), so X's first four requests go
    # through and every request after them meets the 429: no request of X is in flight across the
    # boundary, and any request the fake receives after the first 429 went out after the app knew.
    # A latency well above the spread of a wave of requests (wide on a loaded 2-core machine) keeps
    # those waves apart.
    network.controls.set_latency(1.0)
    limit, window = 4, timedelta(seconds=6)
    network.set_rate_limit("account", limit, window)  # per account: only X's account goes over it
    start_worker_and_clock(stack)

    tenant_a = stack.make_tenant("Storm")
    tenant_b = stack.make_tenant("Calm")
    x = stack.connect(tenant_a, "stormy")
    others_a = [stack.connect(tenant_a, h) for h in ("sunny", "breezy")]
    others_b = [stack.connect(tenant_b, h) for h in ("still", "quiet")]
    x_posts, other_posts = 3 * limit, limit - 1  # X needs three windows; every other channel fits in one
    later = utcnow() + timedelta(hours=1)
    stack.schedule(tenant_a, [x], [f"Storm post {n}" for n in range(x_posts)], at=later)
    stack.schedule(tenant_a, others_a, [f"Sunny post {n}" for n in range(other_posts)], at=later)
    stack.schedule(tenant_b, others_b, [f"Calm post {n}" for n in range(other_posts)], at=later)
    total = x_posts + 4 * other_posts
    stack.make_due(1.0)  # all at the same moment: one claim, one batch, X's targets next to everyone else's

    def first_pass_done() -> bool:
        targets = stack.targets()
        x_states = Counter(t.state for t in targets if t.channel_id == x)
        others = [t.state for t in targets if t.channel_id != x]
        return all(s == "published" for s in others) and x_states == {"published": limit, "scheduled": 2 * limit}

    stack.wait_until(first_pass_done, timeout=30, what="the first pass: others published, X paused")
    x_token = f"Bearer {stack.access_tokens['stormy']}"
    x_requests = [e for e in network.journal.entries() if e.headers.get("authorization") == x_token]
    limited = sorted((e for e in x_requests if e.status == 429), key=lambda e: e.answered_at)
    assert limited, "X was never rate limited"
    first_429 = limited[0]
    reset = parse_iso(first_429.response_headers["X-RateLimit-Reset"])

    targets = stack.targets()
    others = [t for t in targets if t.channel_id != x]
    for t in others:  # not held up by X: published in the first pass, before X may even send again
        assert t.published_at < reset, t
    one_attempt = stack.rows(
        "SELECT target_id FROM publish_attempts WHERE target_id = ANY(:ids) GROUP BY 1 HAVING count(*) = 1",
        ids=[t.id for t in others],
    )
    assert len(one_attempt) == len(others)  # and never deferred or limited on X's account
    waiting = [t for t in targets if t.channel_id == x and t.state == "scheduled"]
    assert all(t.due_at >= reset for t in waiting), [(t.due_at, reset) for t in waiting]
    [paused_until] = [r.paused_until for r in stack.rows("SELECT paused_until FROM channels WHERE id = :id", id=x)]
    assert paused_until >= reset

    stack.wait_all_final(total, timeout=60)
    assert_published_once(stack, network, total)
    # Each 429 (there is one storm per window X runs into) silences X until that window's reset.
    x_requests = [e for e in network.journal.entries() if e.headers.get("authorization") == x_token]
    timeline = "\n".join(
        f"{e.seq:3d} received {e.received_at:%H:%M:%S.%f} answered {e.answered_at:%H:%M:%S.%f} {e.status}"
        for e in x_requests
    )
    storms = [e for e in x_requests if e.status == 429]
    assert len(storms) >= 2, timeline
    for storm in storms:
        until = parse_iso(storm.response_headers["X-RateLimit-Reset"])
        sent = [e.seq for e in x_requests if storm.answered_at < e.received_at < until]
        assert sent == [], f"X sent {sent} after a 429 (#{storm.seq}) and before {until:%H:%M:%S.%f}:\n{timeline}"


# -- g. nothing published before its time -----------------------------------------------------------------------------


def test_clock_never_publishes_before_the_scheduled_time(stack, network):
    network.controls.set_latency(0.05)
    start_worker_and_clock(stack)
    tenant = stack.make_tenant("Punctual")
    channels = [stack.connect(tenant, f"prompt{n}") for n in range(3)]
    base = utcnow()
    times = [base + timedelta(seconds=1 + 4 * n / 29) for n in range(30)]  # staggered over now+1 … now+5 s
    for i, channel in enumerate(channels):
        stack.schedule(tenant, [channel], [f"On time {n}" for n in range(i, 30, 3)], at=times[i::3])

    stack.wait_all_final(30, timeout=60)
    assert_published_once(stack, network, 30)
    received = {}
    for entry in post_requests(network):
        received.setdefault(key_of(entry), entry.received_at)
    for target in stack.targets():
        at_network = received[target.idempotency_key]
        assert at_network >= target.scheduled_at, (target.id, target.scheduled_at, at_network)
