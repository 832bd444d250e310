"""Claim due targets by the database clock and hand them to workers.

Several dispatchers may run at once: the claim is one UPDATE over rows picked
with FOR UPDATE SKIP LOCKED, so each due target is claimed by exactly one of
them. A claim is a lease: if its job never runs (Redis lost, worker gone),
recovery returns the target once the lease has expired.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from saas.posts.models import PostTarget, TargetState
from saas.posts.service import settle_post
from saas.publishing import outcomes, policy
from tenants.scoping import system_session

log = logging.getLogger(__name__)

PUBLISH_QUEUE = "publish"

CLAIM_SQL = sa.text("""
WITH due AS (
    SELECT t.id
    FROM post_targets t
    JOIN channels c ON c.tenant_id = t.tenant_id AND c.id = t.channel_id
    WHERE t.state = 'scheduled'
      AND t.due_at <= now()
      AND (c.paused_until IS NULL OR c.paused_until <= now())
      AND NOT EXISTS (SELECT 1 FROM network_pauses p WHERE p.network = c.network AND p.until > now())
    ORDER BY t.due_at, t.id
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE post_targets t
SET state = 'queued', claim_token = :token, claimed_until = now() + make_interval(secs => :lease)
FROM due
WHERE t.id = due.id
RETURNING t.id, t.tenant_id, t.channel_id
""")

# A job lost before it started: nothing reached any network, so simply due again.
RECOVER_QUEUED_SQL = sa.text("""
UPDATE post_targets SET state = 'scheduled', claim_token = NULL, claimed_until = NULL
WHERE state = 'queued' AND claimed_until < now()
RETURNING id
""")

# A worker stopped mid-attempt: the network may have acted. Close the attempt as abandoned
# and let the next attempt resolve it (idempotency key, read-back, or a person).
RECOVER_PUBLISHING_SQL = sa.text("""
WITH stale AS (
    SELECT id FROM post_targets
    WHERE state = 'publishing' AND claimed_until < now()
    FOR UPDATE SKIP LOCKED
), closed AS (
    UPDATE publish_attempts a
    SET outcome = 'abandoned', finished_at = now(),
        message = 'The worker stopped while publishing, so we could not see the answer. '
                  'The next attempt checks before publishing again.'
    FROM stale
    WHERE a.target_id = stale.id AND a.finished_at IS NULL
    RETURNING a.target_id, a.started_at
)
UPDATE post_targets t
SET state = 'scheduled', due_at = now(), claim_token = NULL, claimed_until = NULL,
    outcome_unknown_since = COALESCE(t.outcome_unknown_since,
                                     (SELECT min(c.started_at) FROM closed c WHERE c.target_id = t.id), now())
FROM stale
WHERE t.id = stale.id
RETURNING t.id
""")


@dataclass(frozen=True)
class DispatchReport:
    claimed: int
    blocked: int
    enqueued_jobs: int
    recovered: int


def publish_queue(connection: Redis) -> Queue:
    return Queue(PUBLISH_QUEUE, connection=connection, serializer=JSONSerializer)


def recover_expired_claims(session: so.Session) -> int:
    recovered = len(session.execute(RECOVER_QUEUED_SQL).all())
    recovered += len(session.execute(RECOVER_PUBLISHING_SQL).all())
    return recovered


def _batches(claimed: list[tuple[int, int, int]], size: int) -> list[list[list[int]]]:
    """Pack (target, tenant, channel) into batches, keeping a channel's targets together where possible."""
    by_channel: dict[int, list[list[int]]] = defaultdict(list)
    for target_id, tenant_id, channel_id in claimed:
        by_channel[channel_id].append([tenant_id, target_id])
    batches: list[list[list[int]]] = [[]]
    for pairs in by_channel.values():
        for pair in pairs:
            if len(batches[-1]) >= size:
                batches.append([])
            batches[-1].append(pair)
    return [b for b in batches if b]


def _block(session: so.Session, claimed_ids: list[int]) -> list[tuple[int, int]]:
    """Apply the policy to every claimed target; block those that may not go. Returns (tenant, target) pairs."""
    blocked = []
    targets = session.scalars(
        sa.select(PostTarget)
        .where(PostTarget.id.in_(claimed_ids))
        .options(so.joinedload(PostTarget.channel), so.joinedload(PostTarget.post))
    ).all()
    policy.prepare(session, targets)
    for target in targets:
        hold = policy.hold_for(target)
        if hold is None:
            continue
        blocked.append((target.tenant_id, target.id))
        target.state = TargetState.BLOCKED
        target.last_error = hold.message
        target.blocked_reason = hold.reason  # billing releases its own holds when the subscription recovers
        target.claim_token = None
        target.claimed_until = None
        settle_post(target.post)
    return blocked


def dispatch_due_targets(connection: Redis) -> DispatchReport:
    """One dispatcher pass: recover expired leases, claim what is due, block or enqueue it."""
    config = current_app.config
    token = str(uuid.uuid4())
    with system_session() as session:
        recovered = recover_expired_claims(session)
        claimed = [
            (row.id, row.tenant_id, row.channel_id)
            for row in session.execute(
                CLAIM_SQL,
                {"limit": config["PUBLISH_CLAIM_LIMIT"], "token": token, "lease": config["PUBLISH_LEASE_SECONDS"]},
            )
        ]
        blocked = _block(session, [c[0] for c in claimed]) if claimed else []
        session.commit()
    blocked_ids = {target_id for _, target_id in blocked}
    to_publish = [c for c in claimed if c[0] not in blocked_ids]
    batches = _batches(to_publish, config["PUBLISH_BATCH_SIZE"])
    queue = publish_queue(connection)
    for batch in batches:
        # Deterministic id: the same claim can never become two jobs.
        digest = hashlib.sha256(repr((token, batch)).encode()).hexdigest()[:16]
        queue.enqueue(
            "saas.publishing.jobs.publish_batch",
            token,
            batch,
            job_id=f"publish-{digest}",
            job_timeout=max(60, config["PUBLISH_LEASE_SECONDS"]),
            result_ttl=300,
            failure_ttl=86400,
        )
    for tenant_id, target_id in blocked:
        outcomes.tell_people(tenant_id, target_id)
    if claimed or recovered:
        log.info(
            "dispatched %d targets in %d jobs (%d blocked, %d recovered)",
            len(to_publish),
            len(batches),
            len(blocked_ids),
            recovered,
        )
    return DispatchReport(len(claimed), len(blocked_ids), len(batches), recovered)
