"""The publish job: one batch of claimed targets, published concurrently, every attempt on record.

For each target, in this order:
1. In one transaction: check the claim is still ours, move the target to
   `publishing`, and write the attempt row. Nothing is sent before this commits.
2. Call the network (outside any transaction).
3. In one transaction: close the attempt and move the target to its next state.
   Successes (most targets) are written a tenant at a time, a few statements for
   many targets (`PublishedLog`); every other outcome is written at once.

Step 1 is written a tenant at a time too, and each tenant's targets start
publishing as soon as theirs is committed.

A worker killed between 1 and 3 leaves an open attempt and a `publishing`
target; lease recovery (dispatch.py) then marks the outcome unknown, and the
next attempt resolves it with the network's idempotency key or a read-back
instead of publishing blindly.

Container networks (Instagram, Threads) also record checkpoints on the target
while step 2 runs: each container id is committed before that container is
polled or published, so the next attempt reads its status instead of making
a second one (`TargetCheckpoints`). Networks with a first comment (Facebook,
Instagram, LinkedIn) record the comment's id the same way, so it is sent once; a
failed first comment leaves the target published, with a note in `last_error`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from publishers import comments
from publishers.base import Capabilities, Credentials, OutboundPost, Publisher, PublishResult, ResumablePublisher
from publishers.errors import (
    AuthExpired,
    AuthRevoked,
    DuplicatePost,
    InvalidPost,
    OutcomeUnknown,
    PublisherError,
    RateLimited,
    TransientError,
)
from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth, NetworkPause
from saas.posts.models import AttemptOutcome, PostTarget, PublishAttempt, TargetState
from saas.posts.outbound import outbound_post
from saas.posts.service import settle_post, settle_post_by_id
from saas.publishing import outcomes
from saas.publishing.networks import publisher_for
from saas.webhooks import events as webhook_events
from tenants.scoping import tenant_session

log = logging.getLogger(__name__)

RETRY_BACKOFF = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
)
# Threads writing step 1 for the next tenants while the others publish.
STARTING_THREADS = 2
# An idempotency key is trusted only this far inside the network's own window.
KEY_SAFETY_MARGIN = timedelta(minutes=5)
# Read back a little before the unknown attempt started: clocks differ.
READBACK_SLACK = timedelta(minutes=2)


class Unconfirmed(Exception):
    """We cannot tell whether the post went out, and must not publish blindly."""


class NotSent(Exception):
    """Nothing was sent and nothing went wrong: the target simply goes back to being due."""


@dataclass(frozen=True)
class Started:
    """What step 1 hands to steps 2 and 3: plain values, no ORM objects across threads."""

    tenant_id: int
    target_id: int
    post_id: int
    attempt_id: int
    channel_id: int
    network: str
    post: OutboundPost
    credentials: Credentials
    idempotency_key: str
    outcome_unknown_since: datetime | None
    # Past this moment the claim may be recovered and handed out again, so nothing is sent after it.
    send_deadline: datetime
    # Steps an earlier attempt already took on the network (container ids), for resumable adapters.
    checkpoints: Mapping[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


class ConcurrencyLimits:
    """Per-channel and per-network caps on requests in flight, from each network's capabilities."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._channels: dict[int, threading.Semaphore] = {}
        self._networks: dict[str, threading.Semaphore] = {}

    @contextmanager
    def hold(self, channel_id: int, caps: Capabilities) -> Iterator[None]:
        with self._guard:
            channel = self._channels.setdefault(channel_id, threading.Semaphore(caps.max_concurrent_per_channel))
            network = self._networks.setdefault(caps.network, threading.Semaphore(caps.max_concurrent_per_network))
        with network, channel:
            yield


class PauseBoard:
    """Rate limits met by this job's own requests, so later requests in the batch wait instead of sending."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._until: dict[str, datetime] = {}

    @staticmethod
    def _key(started: Started, scope: str) -> str:
        return f"network:{started.network}" if scope == "app" else f"channel:{started.channel_id}"

    def note(self, started: Started, limit: RateLimited) -> None:
        key = self._key(started, limit.scope)
        with self._guard:
            self._until[key] = max(self._until.get(key, limit.reset_at), limit.reset_at)

    def until(self, started: Started) -> datetime | None:
        now = _now()
        with self._guard:
            pauses = [self._until.get(self._key(started, scope)) for scope in ("channel", "app")]
        active = [u for u in pauses if u is not None and u > now]
        return max(active) if active else None


def publish_batch(claim_token: str, pairs: list[list[int]]) -> dict[str, int]:
    """RQ job: publish each (tenant_id, target_id) claimed under `claim_token`. Ids only, by design.

    Each tenant's targets go to the publishing threads as soon as their attempts are on record,
    while the next tenants' are still being written, so the network calls never wait for the
    whole batch's first step.
    """
    config = current_app.config
    counts: Counter[str] = Counter()
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for tenant_id, target_id in pairs:
        by_tenant[tenant_id].append(target_id)
    limits, pauses, published, guard = ConcurrencyLimits(), PauseBoard(), PublishedLog(), threading.Lock()
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def start(tenant_id: int, target_ids: list[int]) -> list[Started]:
        try:
            with app.app_context():
                started, skipped = _start_attempts(tenant_id, target_ids, claim_token)
        except Exception:
            # Nothing was committed: the targets stay `queued` and lease recovery makes them due again.
            log.exception("starting targets %s of tenant %s failed; lease recovery will retry", target_ids, tenant_id)
            started, skipped = [], Counter({"not_started": len(target_ids)})
        with guard:
            counts.update(skipped)
        published.expect(started)
        return started

    def run(started: Started) -> None:
        try:
            with app.app_context():
                result = publish_started(started, limits, pauses, published)
                published.done(started)
        except Exception:
            # The target stays `publishing`; lease recovery treats it as an unknown outcome.
            log.exception("publishing target %s failed; lease recovery will resolve it", started.target_id)
            result = "crashed"
        with guard:
            counts[result] += 1

    with (
        ThreadPoolExecutor(max_workers=config["PUBLISH_THREADS"], thread_name_prefix="publish") as pool,
        ThreadPoolExecutor(max_workers=STARTING_THREADS, thread_name_prefix="start") as starters,
    ):
        for future in as_completed([starters.submit(start, *tenant) for tenant in by_tenant.items()]):
            for started in future.result():
                pool.submit(run, started)
    published.flush()
    return dict(counts)


def publish_started(started: Started, limits: ConcurrencyLimits, pauses: PauseBoard, published: PublishedLog) -> str:
    """Steps 2 and 3 for one target whose attempt row is already committed."""
    publisher = publisher_for(started.network)
    # The slot is held until the outcome is recorded, so a 429 met here is on the board
    # before the next request to this channel may start.
    with limits.hold(started.channel_id, publisher.capabilities):
        clock = time.monotonic()
        paused_until = pauses.until(started)
        if _now() > started.send_deadline:
            result: PublishResult | Exception = NotSent(
                "Not sent: the batch ran longer than its claim allows, so it is due again now."
            )
        elif paused_until is not None:
            result = RateLimited(
                "Waited for the network's rate limit to reset; nothing was sent.",
                reset_at=paused_until,
                http_status=None,
            )
        else:
            try:
                result = _call_network(publisher, started)
            except (PublisherError, Unconfirmed) as exc:
                result = exc
            except Exception as exc:  # an adapter bug must not strand the target: treat as unknown
                log.exception("unexpected error publishing target %s", started.target_id)
                result = OutcomeUnknown(f"Unexpected error while publishing ({type(exc).__name__}).")
            if isinstance(result, RateLimited):
                pauses.note(started, result)
        return _finish(started, result, clock, published)


# Step 1's writes for the targets that go, naming the tenant in every statement.
START_TARGETS = sa.text("""
    UPDATE post_targets SET state = 'publishing', attempt_count = attempt_count + 1, claimed_until = :until,
                            updated_at = now()
    WHERE tenant_id = :tenant AND id = ANY(:ids)
    RETURNING id, attempt_count
""")
OPEN_ATTEMPTS = sa.text("""
    INSERT INTO publish_attempts (tenant_id, target_id, attempt_no, idempotency_key, outcome)
    SELECT :tenant, v.target_id, v.attempt_no, v.key, :outcome
    FROM unnest(CAST(:ids AS integer[]), CAST(:numbers AS integer[]), CAST(:keys AS text[]))
         AS v(target_id, attempt_no, key)
    RETURNING target_id, id
""")


def _start_attempts(tenant_id: int, target_ids: list[int], claim_token: str) -> tuple[list[Started], Counter[str]]:
    """Step 1 for one tenant's targets: claim check, `publishing`, attempt rows; one commit before any call."""
    lease = timedelta(seconds=current_app.config["PUBLISH_LEASE_SECONDS"])
    # A call started before the deadline ends (or times out) before the lease does.
    send_margin = min(timedelta(seconds=3 * current_app.config["NETWORK_TIMEOUT_SECONDS"] + 5), lease / 2)
    skipped: Counter[str] = Counter()
    failed: list[int] = []
    started: list[Started] = []
    with tenant_session(tenant_id) as session:
        # Scoped to `tenant_id`: another tenant's target ids simply are not found. Each row comes
        # with its network's app-wide pause, if one is running.
        rows = session.execute(
            sa.select(PostTarget, NetworkPause.until)
            .join(PostTarget.channel)
            .outerjoin(
                NetworkPause, sa.and_(NetworkPause.network == Channel.network, NetworkPause.until > sa.func.now())
            )
            .where(PostTarget.id.in_(target_ids))
            .options(so.contains_eager(PostTarget.channel), so.joinedload(PostTarget.post, innerjoin=True))
            .with_for_update(of=PostTarget)
        ).all()
        if len(rows) < len(set(target_ids)):
            missing = set(target_ids) - {target.id for target, _ in rows}
            log.warning("refusing targets %s: not found in tenant %s", sorted(missing), tenant_id)
            skipped["refused"] += len(missing)
        going: list[tuple[PostTarget, Credentials]] = []
        now = _now()
        for target, network_paused_until in rows:
            if target.state is not TargetState.QUEUED or target.claim_token != claim_token:
                skipped["not_ours"] += 1  # recovered and reclaimed elsewhere, canceled, or already done
                continue
            channel = target.channel
            paused = [u for u in (channel.paused_until, network_paused_until) if u and u > now]
            if paused:
                # A rate limit met since the claim: send nothing, wait for its reset.
                target.state, target.due_at = TargetState.SCHEDULED, max(paused)
                target.claim_token = target.claimed_until = None
                skipped["deferred"] += 1
                continue
            try:
                credentials = channel_service.load_credentials(channel)
            except Exception as exc:
                target.state = TargetState.FAILED
                target.last_error = f"The stored connection for @{channel.handle} cannot be read ({exc}). Reconnect it."
                settle_post(target.post)
                failed.append(target.id)
                continue
            going.append((target, credentials))
        # The targets that go: two set-based statements (the hot path), then the Started values.
        ids = [target.id for target, _ in going]
        attempt_ids: dict[int, int] = {}
        if ids:
            connection = session.connection()
            numbers = dict(
                connection.execute(START_TARGETS, {"tenant": tenant_id, "ids": ids, "until": now + lease}).all()
            )
            attempt_ids = dict(
                connection.execute(
                    OPEN_ATTEMPTS,
                    {
                        "tenant": tenant_id,
                        "ids": ids,
                        "numbers": [numbers[target_id] for target_id in ids],
                        "keys": [target.idempotency_key for target, _ in going],
                        "outcome": AttemptOutcome.STARTED.value,
                    },
                ).all()
            )
        for target, credentials in going:
            started.append(
                Started(
                    tenant_id=tenant_id,
                    target_id=target.id,
                    post_id=target.post_id,
                    attempt_id=attempt_ids[target.id],
                    channel_id=target.channel_id,
                    network=target.channel.network,
                    post=outbound_post(target),
                    credentials=credentials,
                    idempotency_key=target.idempotency_key,
                    outcome_unknown_since=target.outcome_unknown_since,
                    send_deadline=now + lease - send_margin,
                    checkpoints=dict(target.checkpoints or {}),
                )
            )
        session.commit()
    for target_id in failed:
        outcomes.tell_people(tenant_id, target_id)
    if failed:
        skipped["failed"] += len(failed)
    return started, skipped


def _call_network(publisher: Publisher, started: Started) -> PublishResult:
    """Step 2. Raises a publishers.errors class, or Unconfirmed."""
    if started.outcome_unknown_since is not None:
        return _resolve_unknown(publisher, started)
    return _publish_refreshing_once(publisher, started)


def _publish_refreshing_once(publisher: Publisher, started: Started) -> PublishResult:
    try:
        return _publish(publisher, started, started.credentials)
    except AuthExpired:
        fresh = _refresh(publisher, started)  # AuthRevoked from here means reconnect
        return _publish(publisher, started, fresh)


def _publish(publisher: Publisher, started: Started, credentials: Credentials) -> PublishResult:
    if isinstance(publisher, ResumablePublisher):
        checkpoints = TargetCheckpoints(started)
        return publisher.publish_resumable(started.post, credentials, started.idempotency_key, checkpoints)
    return publisher.publish(started.post, credentials, started.idempotency_key)


# Merged into the target's map and committed at once: the next attempt must find it even if this worker dies now.
SAVE_CHECKPOINT = sa.text("""
    UPDATE post_targets
    SET checkpoints = coalesce(checkpoints, '{}'::jsonb)
                      || jsonb_build_object(CAST(:name AS text), CAST(:value AS text))
    WHERE tenant_id = :tenant AND id = :target
""")


class TargetCheckpoints:
    """A resumable adapter's checkpoints (container ids), kept on the target row across attempts.

    Names are prefixed with the target's idempotency key: an edit makes a new revision and key,
    so a container holding the old text is never resumed.
    """

    def __init__(self, started: Started) -> None:
        self._started = started
        self._values = dict(started.checkpoints)

    def _name(self, name: str) -> str:
        return f"{self._started.idempotency_key}:{name}"

    def get(self, name: str) -> str | None:
        return self._values.get(self._name(name))

    def put(self, name: str, value: str) -> None:
        key = self._name(name)
        if self._values.get(key) == value:
            return
        with tenant_session(self._started.tenant_id) as session:
            session.execute(
                SAVE_CHECKPOINT,
                {"tenant": self._started.tenant_id, "target": self._started.target_id, "name": key, "value": value},
            )
            session.commit()
        self._values[key] = value


def _resolve_unknown(publisher: Publisher, started: Started) -> PublishResult:
    """An earlier attempt may have gone out. Publish again only where the network can tell."""
    assert started.outcome_unknown_since is not None
    caps = publisher.capabilities
    if caps.idempotency in ("record_key", "container"):
        # The adapter looks for each part's record key, or reads each stored container's status, before
        # creating anything: a second post cannot happen.
        return _publish_refreshing_once(publisher, started)
    if caps.idempotency == "duplicate_error":
        # Sending the same post again either publishes it (the first never landed) or is refused as a
        # duplicate naming the post the first attempt made: adopt that one.
        try:
            return _publish_refreshing_once(publisher, started)
        except DuplicatePost as exc:
            # An identical post made before the unknown attempt is an older twin, not ours: ours never landed.
            if exc.existing_at is not None and exc.existing_at < started.outcome_unknown_since - READBACK_SLACK:
                raise
            return _adopted(publisher, started, PublishResult(exc.existing_id, exc.existing_url, exc.existing_at))
    if (
        caps.idempotency == "key"
        and caps.idempotency_window is not None
        and (_now() - started.outcome_unknown_since < caps.idempotency_window - KEY_SAFETY_MARGIN)
    ):
        # Same key within the network's window: it returns the earlier post instead of a second one.
        return _publish_refreshing_once(publisher, started)
    since = started.outcome_unknown_since - READBACK_SLACK
    try:
        try:
            found = publisher.find_published(started.post, started.credentials, started.idempotency_key, since=since)
        except AuthExpired:
            fresh = _refresh(publisher, started)
            found = publisher.find_published(started.post, fresh, started.idempotency_key, since=since)
    except PublisherError as exc:
        raise Unconfirmed(
            f"An earlier attempt may have published this post, and {caps.display_name} could not be checked "
            f"({exc.message}). Check the account, then mark it as published or publish it again."
        ) from None
    if found is None:
        raise Unconfirmed(
            f"An earlier attempt may have published this post, but we could not find it on {caps.display_name}. "
            "It may still appear. Check the account, then mark it as published or publish it again."
        )
    return _adopted(publisher, started, found)


def _adopted(publisher: Publisher, started: Started, result: PublishResult) -> PublishResult:
    """A post an earlier attempt made, adopted without publishing: its first comment is not sent from here.

    That attempt may have commented before it was lost, and a second identical comment is worse than
    asking the user to check, so unless the comment's checkpoint proves it went out, say so.
    """
    done = f"{started.idempotency_key}:{comments.CHECKPOINT}" in started.checkpoints
    if not started.post.first_comment or not publisher.capabilities.supports_first_comment or done:
        return result
    return replace(
        result,
        note=(
            "An earlier attempt published this post but was lost before we could tell whether its first comment "
            f"went out, so it was not sent again. Check the post on {publisher.capabilities.display_name} and add "
            "the comment by hand if it is missing."
        ),
    )


def _refresh(publisher: Publisher, started: Started) -> Credentials:
    """New credentials, refreshed at most once per rotation however many attempts ask at the same time.

    Refresh tokens rotate (X, Bluesky): a second refresh with the token the first one spent is
    refused, which would wrongly mark the channel for reconnecting. So the channel row is locked
    while refreshing, and an attempt that finds newer credentials already stored uses those.
    """
    with tenant_session(started.tenant_id) as session:
        channel = session.scalars(sa.select(Channel).where(Channel.id == started.channel_id).with_for_update()).one()
        stored = channel_service.load_credentials(channel)
        if stored.access_token != started.credentials.access_token:
            return stored  # another attempt refreshed while we waited for the lock
        fresh = publisher.refresh(stored)
        channel_service.store_credentials(channel, fresh)
        session.commit()
        return fresh


def _retries_so_far(session: Session, target_id: int, excluding: int) -> int:
    """Earlier attempts that failed in a way that counts towards giving up (rate limits do not)."""
    return int(
        session.scalar(
            sa.select(sa.func.count(PublishAttempt.id)).where(
                PublishAttempt.target_id == target_id,
                PublishAttempt.id != excluding,
                PublishAttempt.outcome.in_([AttemptOutcome.RETRY, AttemptOutcome.UNKNOWN, AttemptOutcome.ABANDONED]),
            )
        )
    )


def _finish(started: Started, result: PublishResult | Exception, clock: float, published: PublishedLog) -> str:
    """Step 3: close the attempt and move the target on, in one transaction."""
    latency_ms = int((time.monotonic() - clock) * 1000)
    if isinstance(result, PublishResult):
        published.add(started, result, latency_ms)
        return "published"
    max_attempts = current_app.config["PUBLISH_MAX_ATTEMPTS"]
    tell = False
    with tenant_session(started.tenant_id) as session:
        target = session.scalar(sa.select(PostTarget).where(PostTarget.id == started.target_id).with_for_update())
        attempt = session.get(PublishAttempt, started.attempt_id)
        assert target is not None and attempt is not None
        attempt.finished_at = _now()
        attempt.latency_ms = latency_ms
        target.claim_token = None
        target.claimed_until = None
        now = _now()

        if isinstance(result, NotSent):
            attempt.outcome = AttemptOutcome.SKIPPED
            attempt.message = str(result)
            target.state = TargetState.SCHEDULED
            target.due_at = now
            outcome = "deferred"
        elif isinstance(result, RateLimited):
            attempt.outcome = AttemptOutcome.RATE_LIMITED
            _record_error(attempt, result)
            _pause(session, target.channel, started.network, result)
            target.state = TargetState.SCHEDULED
            target.due_at = max(result.reset_at, now)
            target.last_error = result.message
            outcome = "rate_limited"
        elif isinstance(result, Unconfirmed):
            attempt.outcome = AttemptOutcome.UNKNOWN
            attempt.error_class = "Unconfirmed"
            attempt.message = str(result)
            target.state = TargetState.UNCONFIRMED
            target.last_error = str(result)
            outcome, tell = "unconfirmed", True
        elif isinstance(result, (TransientError, OutcomeUnknown)):
            unknown = isinstance(result, OutcomeUnknown)
            attempt.outcome = AttemptOutcome.UNKNOWN if unknown else AttemptOutcome.RETRY
            _record_error(attempt, result)
            if unknown and target.outcome_unknown_since is None:
                target.outcome_unknown_since = attempt.started_at
            with session.no_autoflush:  # the attempt row is written once, complete (it is append-only)
                retries = _retries_so_far(session, target.id, excluding=attempt.id) + 1
            if retries < max_attempts:
                target.state = TargetState.SCHEDULED
                target.due_at = now + RETRY_BACKOFF[min(retries - 1, len(RETRY_BACKOFF) - 1)]
                target.last_error = f"{result.message} Trying again automatically."
                attempt.message = (
                    (attempt.message or "")
                    + " We will try again"
                    + (" and check first, so it is not posted twice." if unknown else ".")
                )
                outcome = "retry"
            elif unknown:
                target.state = TargetState.UNCONFIRMED
                target.last_error = (
                    f"{result.message} After {retries} tries we still cannot tell whether it was "
                    "published. Check the account, then mark it as published or publish it again."
                )
                outcome, tell = "unconfirmed", True
            else:
                target.state = TargetState.FAILED
                target.last_error = f"Gave up after {retries} tries: {result.message}"
                outcome, tell = "failed", True
        elif isinstance(result, AuthRevoked):
            attempt.outcome = AttemptOutcome.FAILED
            _record_error(attempt, result)
            # Locked and re-read: parallel attempts on this channel must record one health change, not several.
            channel = session.scalars(
                sa.select(Channel)
                .where(Channel.id == target.channel_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if channel.health is ChannelHealth.OK:
                channel.health = ChannelHealth.NEEDS_RECONNECT
                channel.health_reason = result.message
                channel.health_changed_at = now
                webhook_events.channel_needs_reconnect(session, channel)
            target.state = TargetState.BLOCKED
            target.last_error = (
                f"@{channel.handle} needs to be reconnected: {result.message} "
                "Reconnect it on the Channels page, then try again."
            )
            outcome, tell = "blocked", True
        else:
            assert isinstance(result, PublisherError), result
            attempt.outcome = AttemptOutcome.FAILED
            _record_error(attempt, result)
            target.state = TargetState.FAILED
            target.last_error = (
                result.message
                if isinstance(result, InvalidPost)
                else (f"{result.message} This will not succeed by retrying as it is.")
            )
            outcome, tell = "failed", True
        if target.state in (TargetState.FAILED, TargetState.UNCONFIRMED):
            webhook_events.emit_for_target(session, f"post.{target.state.value}", target.id)
        settle_post(target.post)
        session.commit()
    if tell:
        outcomes.tell_people(started.tenant_id, started.target_id)
    return outcome


class PublishedLog:
    """Successes waiting to be recorded, written a tenant at a time in a few set-based statements.

    Most targets end here, so this is the hot path: one transaction per tenant per batch instead
    of one per target. A tenant's successes are written when its last target in the batch is
    done, or sooner when MAX_PENDING pile up or the oldest has waited MAX_WAIT (a slow sibling
    must not keep the rest looking unfinished). A success held here when the worker dies is not
    lost: its attempt stays open, lease recovery marks the outcome unknown, and the next attempt
    sends the same idempotency key (or reads back) and finds the post already live.
    """

    MAX_PENDING = 50
    MAX_WAIT_SECONDS = 1.0

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._outstanding: Counter[int] = Counter()
        self._pending: dict[int, list[_Success]] = defaultdict(list)

    def expect(self, work: list[Started]) -> None:
        with self._guard:
            self._outstanding.update(started.tenant_id for started in work)

    def add(self, started: Started, result: PublishResult, latency_ms: int) -> None:
        with self._guard:
            self._pending[started.tenant_id].append(_Success(started, result, latency_ms, _now(), time.monotonic()))

    def done(self, started: Started) -> None:
        """`started` is finished, whatever its outcome: write its tenant's successes if it is time."""
        tenant_id = started.tenant_id
        with self._guard:
            self._outstanding[tenant_id] -= 1
            rows = self._pending.get(tenant_id, [])
            due = rows and (
                self._outstanding[tenant_id] <= 0
                or len(rows) >= self.MAX_PENDING
                or time.monotonic() - rows[0].noted >= self.MAX_WAIT_SECONDS
            )
            if not due:
                return
            del self._pending[tenant_id]
        _record_published(tenant_id, rows)

    def flush(self) -> None:
        with self._guard:
            pending, self._pending = self._pending, defaultdict(list)
        for tenant_id, rows in pending.items():
            _record_published(tenant_id, rows)


@dataclass(frozen=True)
class _Success:
    started: Started
    result: PublishResult
    latency_ms: int
    at: datetime
    noted: float  # time.monotonic() when added


CONFIRMED = "Confirmed: the earlier attempt had published it; nothing was posted twice."

# One statement for all the rows, naming the tenant in every WHERE: close the attempts, publish the targets,
# and (the webhook outbox, in the same transaction) record post.published for subscribed endpoints, if any.
RECORD_PUBLISHED = sa.text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:attempts AS integer[]), CAST(:targets AS integer[]), CAST(:ats AS timestamptz[]),
                             CAST(:published_ats AS timestamptz[]), CAST(:latencies AS integer[]),
                             CAST(:remotes AS text[]), CAST(:urls AS text[]), CAST(:messages AS text[]),
                             CAST(:notes AS text[]))
            AS v(attempt_id, target_id, at, published_at, latency, remote, url, message, note)
    ), closed AS (
        UPDATE publish_attempts a
        SET outcome = 'published', finished_at = v.at, latency_ms = v.latency, remote_id = v.remote,
            message = v.message
        FROM v WHERE a.id = v.attempt_id AND a.tenant_id = :tenant
    ), published AS (
        UPDATE post_targets t
        SET state = 'published', remote_id = v.remote, remote_url = v.url, published_at = v.published_at,
            outcome_unknown_since = NULL, last_error = v.note, claim_token = NULL, claimed_until = NULL,
            updated_at = now()
        FROM v WHERE t.id = v.target_id AND t.tenant_id = :tenant
        RETURNING """
    + webhook_events.TARGET_EVENT_COLUMNS
    + """
    ), """
    + webhook_events.published_fan_out("published")
    + """
    SELECT count(*) FROM published
"""
)
# Locked in id order (no deadlocks), so a sibling target finishing elsewhere settles after us.
LOCK_POSTS = sa.text("SELECT id FROM posts WHERE tenant_id = :tenant AND id = ANY(:ids) ORDER BY id FOR UPDATE")
SETTLE_PUBLISHED = sa.text("""
    UPDATE posts p SET state = 'published', updated_at = now()
    WHERE p.tenant_id = :tenant AND p.id = ANY(:ids) AND p.state <> 'published'
      AND NOT EXISTS (SELECT 1 FROM post_targets x
                      WHERE x.post_id = p.id AND x.state NOT IN ('published', 'canceled'))
    RETURNING p.id
""")


def _record_published(tenant_id: int, rows: list[_Success]) -> None:
    """Close the attempts, publish the targets and settle their posts, in one transaction."""
    post_ids = sorted({row.started.post_id for row in rows})
    with tenant_session(tenant_id) as session:
        connection = session.connection()
        connection.execute(
            RECORD_PUBLISHED,
            {
                "tenant": tenant_id,
                "attempts": [row.started.attempt_id for row in rows],
                "targets": [row.started.target_id for row in rows],
                "ats": [row.at for row in rows],
                "published_ats": [row.result.published_at or row.at for row in rows],
                "latencies": [row.latency_ms for row in rows],
                "remotes": [row.result.remote_id for row in rows],
                "urls": [row.result.url for row in rows],
                "messages": [_published_message(row) for row in rows],
                "notes": [row.result.note for row in rows],
            },
        )
        connection.execute(LOCK_POSTS, {"tenant": tenant_id, "ids": post_ids})
        settled = set(connection.execute(SETTLE_PUBLISHED, {"tenant": tenant_id, "ids": post_ids}).scalars())
        for post_id in post_ids:
            if post_id not in settled:  # other targets still on their way, or some failed
                settle_post_by_id(session, post_id)
        session.commit()


def _published_message(row: _Success) -> str:
    message = "Published." if row.started.outcome_unknown_since is None else CONFIRMED
    return f"{message} {row.result.note}" if row.result.note else message


def _record_error(attempt: PublishAttempt, error: PublisherError) -> None:
    attempt.error_class = type(error).__name__
    attempt.http_status = error.http_status
    attempt.message = error.message


def _pause(session: Session, channel: Channel, network: str, limit: RateLimited) -> None:
    """Honour a rate limit: pause this channel, or the whole network for an app-wide limit."""
    if limit.scope == "app":
        session.execute(
            insert(NetworkPause)
            .values(network=network, until=limit.reset_at, reason=limit.message)
            .on_conflict_do_update(
                index_elements=["network"],
                set_={"until": sa.func.greatest(NetworkPause.until, limit.reset_at), "reason": limit.message},
            )
        )
    elif channel.paused_until is None or channel.paused_until < limit.reset_at:
        channel.paused_until = limit.reset_at
