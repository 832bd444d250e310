"""Deliver webhook events: the clock claims due deliveries and enqueues one RQ job per attempt.

Like publishing, the database says what is due: a delivery waits as `pending` with its `next_attempt_at`,
so retries, a worker killed mid-request (its lease expires and it is claimed again) and a Redis wipe lose
nothing. Delivery is at least once: receivers dedupe on `webhook-id`.

Retries follow the Standard Webhooks schedule with ±20% jitter (so many failing endpoints do not retry in
step). An endpoint that has failed without a single success for WEBHOOK_DISABLE_AFTER_DAYS is switched off
and its workspace's owners are told, once.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from flask import current_app
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from saas import mail
from saas.crypto import DecryptionError
from saas.notifications.service import notify
from saas.webhooks import service, signing
from saas.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenants.models import Membership, Role, Tenant
from tenants.scoping import system_session, tenant_session

log = logging.getLogger(__name__)

WEBHOOK_QUEUE = "webhooks"
# After the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 28 hours in all), then give up.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
JITTER = 0.2
SNIPPET = 500
USER_AGENT = "Multipost-Webhooks/1.0"

CLAIM_SQL = sa.text("""
WITH due AS (
    SELECT d.id
    FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND e.enabled
    ORDER BY d.next_attempt_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET state = 'delivering', claim_token = :token, claimed_until = now() + make_interval(secs => :lease)
FROM due WHERE d.id = due.id
RETURNING d.id, d.tenant_id
""")
# A job lost or a worker killed mid-request: due again (the receiver may get it twice, and dedupes).
RECOVER_SQL = sa.text("""
UPDATE webhook_deliveries SET state = 'pending', claim_token = NULL, claimed_until = NULL, next_attempt_at = now()
WHERE state = 'delivering' AND claimed_until < now()
RETURNING id
""")


# Events older than the log keeps, whose deliveries are all finished, with their deliveries and attempts.
PRUNE_SQL = sa.text("""
DELETE FROM webhook_events WHERE id IN (
    SELECT e.id FROM webhook_events e
    WHERE e.created_at < now() - make_interval(days => :days)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.state IN ('pending', 'delivering'))
    ORDER BY e.created_at
    LIMIT :limit
)
RETURNING id
""")


@dataclass(frozen=True)
class Response:
    """What one POST got back: a status and the start of the body, or the error that stopped it."""

    status_code: int | None
    snippet: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def lease_seconds() -> int:
    return int(current_app.config["WEBHOOK_TIMEOUT_SECONDS"] * 3 + 30)


def webhook_queue(connection: Redis) -> Queue:
    return Queue(WEBHOOK_QUEUE, connection=connection, serializer=JSONSerializer)


def dispatch_due_deliveries(connection: Redis, limit: int = 500) -> int:
    """One clock pass: recover expired claims, claim what is due, one job per delivery. Returns jobs enqueued."""
    token = str(uuid.uuid4())
    with system_session() as session:  # the clock serves every workspace's endpoints
        session.execute(RECOVER_SQL)
        claimed = session.execute(CLAIM_SQL, {"limit": limit, "token": token, "lease": lease_seconds()}).all()
        session.commit()
    queue = webhook_queue(connection)
    for delivery_id, tenant_id in claimed:
        queue.enqueue(
            "saas.webhooks.delivery.deliver",
            tenant_id,
            delivery_id,
            token,
            job_id=f"webhook-{delivery_id}-{token}",
            job_timeout=lease_seconds(),
            result_ttl=300,
            failure_ttl=86400,
        )
    return len(claimed)


def prune_old_events(limit: int = 5000) -> int:
    """Forget events (and their delivery log) older than WEBHOOK_LOG_DAYS; returns how many went."""
    with system_session() as session:  # the clock keeps every workspace's log bounded
        pruned = session.execute(PRUNE_SQL, {"days": current_app.config["WEBHOOK_LOG_DAYS"], "limit": limit}).all()
        session.commit()
    return len(pruned)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """The one outbound call to a receiver. No redirects are followed: a 3xx counts as a failure."""
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            answer = client.post(url, content=body, headers=headers)
        snippet = answer.text[:SNIPPET] if answer.content else None
        return Response(answer.status_code, snippet, None, _ms(started))
    except httpx.TimeoutException:
        return Response(None, None, f"No answer within {timeout:g} seconds.", _ms(started))
    except httpx.HTTPError as exc:
        return Response(None, None, f"Could not connect: {type(exc).__name__}: {exc}"[:1000], _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def deliver(tenant_id: int, delivery_id: int, claim_token: str) -> str:
    """RQ job: one attempt at one delivery claimed under `claim_token`. Ids only, by design."""
    with tenant_session(tenant_id) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state is not DeliveryState.DELIVERING or delivery.claim_token != claim_token:
            return "not_ours"  # recovered and claimed again, or the endpoint was deleted
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        assert endpoint is not None
        if not endpoint.enabled:
            # Switched off since the claim: it waits, unsent, and goes out if the endpoint is switched on again.
            delivery.state, delivery.claim_token, delivery.claimed_until = DeliveryState.PENDING, None, None
            session.commit()
            return "endpoint_off"
        now = datetime.now(UTC)
        body = service.body_of(delivery.event)
        message_id, url = delivery.event.message_id, endpoint.url
        try:
            secrets = service.signing_secrets(endpoint, now)
        except DecryptionError as exc:
            # Nothing unsigned ever leaves: the attempt fails with the reason, and retries follow the schedule.
            problem = Response(None, None, f"The signing secret cannot be read ({exc}). Rotate it.", 0)
            secrets = []
    if not secrets:
        return _record(tenant_id, delivery_id, claim_token, now, problem)
    headers = {
        **signing.headers(secrets, message_id, int(time.time()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    started_at = datetime.now(UTC)
    response = post(url, body, headers, current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    return _record(tenant_id, delivery_id, claim_token, started_at, response)


def _record(tenant_id: int, delivery_id: int, claim_token: str, started_at: datetime, response: Response) -> str:
    """The attempt, the delivery's next state and the endpoint's health, in one transaction."""
    with tenant_session(tenant_id) as session:
        delivery = session.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update())
        if delivery is None or delivery.claim_token != claim_token:
            return "not_ours"
        endpoint = session.scalar(
            sa.select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id).with_for_update()
        )
        assert endpoint is not None
        now = datetime.now(UTC)
        earlier = session.scalar(
            sa.select(sa.func.count(WebhookAttempt.id)).where(WebhookAttempt.delivery_id == delivery.id)
        )
        delivery.attempt_count += 1
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempt_no=delivery.attempt_count,
                replay=delivery.attempt_count == 1 and bool(earlier),
                started_at=started_at,
                duration_ms=response.duration_ms,
                status_code=response.status_code,
                succeeded=response.ok,
                response_snippet=response.snippet,
                error=response.error,
            )
        )
        delivery.claim_token = delivery.claimed_until = None
        delivery.last_status_code = response.status_code
        endpoint.last_attempt_at, endpoint.last_status_code = now, response.status_code
        if response.ok:
            delivery.state, delivery.delivered_at, delivery.last_error = DeliveryState.SUCCEEDED, now, None
            endpoint.failing_since, endpoint.last_success_at = None, now
            outcome = "delivered"
        else:
            delivery.last_error = response.error or f"The endpoint answered {response.status_code}."
            if delivery.attempt_count <= len(RETRY_SCHEDULE):
                delivery.state = DeliveryState.PENDING
                delivery.next_attempt_at = now + backoff(delivery.attempt_count)
                outcome = "retry"
            else:
                delivery.state = DeliveryState.FAILED
                outcome = "gave_up"
            endpoint.failing_since = endpoint.failing_since or started_at
            if _disable_if_failing_too_long(endpoint, now):
                _tell_owners(session, endpoint)  # in the same transaction: switched off and told, or neither
        session.commit()
    return outcome


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failed ones, with jitter."""
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _disable_if_failing_too_long(endpoint: WebhookEndpoint, now: datetime) -> bool:
    limit = timedelta(days=current_app.config["WEBHOOK_DISABLE_AFTER_DAYS"])
    if not endpoint.enabled or endpoint.failing_since is None or now - endpoint.failing_since < limit:
        return False
    endpoint.enabled = False
    endpoint.disabled_reason = (
        f"Switched off automatically: every delivery failed for {limit.days} days "
        f"(since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC)."
    )
    return True


def _tell_owners(session: sa.orm.Session, endpoint: WebhookEndpoint) -> None:
    """One notification (in the app and by email) to each owner of the workspace."""
    slug = session.scalar(sa.select(Tenant.slug).where(Tenant.id == endpoint.tenant_id))
    owners = session.scalars(sa.select(Membership.user_id).where(Membership.role == Role.OWNER))
    since = endpoint.failing_since.isoformat() if endpoint.failing_since else ""
    notify(
        session,
        tenant_id=endpoint.tenant_id,
        user_ids=list(owners),
        event_key=f"webhook-disabled:{endpoint.id}:{since}",
        title="A webhook endpoint was switched off",
        body=(
            f"We stopped sending events to {endpoint.url}: {endpoint.disabled_reason} "
            "Fix the receiver, then switch the endpoint on again and resend what it missed from its delivery log."
        ),
        link=mail.link("workspace.webhooks.detail", slug=slug, endpoint_id=endpoint.id),
    )
