"""A workspace's webhook endpoints: add, change, switch off and on, delete; their secret; test, replay, resend.

Runs on a session bound to the workspace (`tenants.scoping`), so another tenant's ids are simply not found.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from saas import safefetch
from saas.channels.service import keyring
from saas.webhooks import signing
from saas.webhooks.events import EVENT_TYPES, TEST_EVENT
from saas.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tenants.scoping import bound_tenant_id

MAX_URL = 2000
MAX_DESCRIPTION = 200
# How long a rotated-out secret still signs, so receivers can switch without dropping events.
OLD_SECRET_GRACE = timedelta(hours=24)
NOT_REPLAYABLE = (DeliveryState.PENDING, DeliveryState.DELIVERING)


class WebhookError(ValueError):
    """Input or an action that cannot be taken; `field` names the form field, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EndpointInput:
    url: str
    events: tuple[str, ...]
    description: str = ""


def utcnow() -> datetime:
    return datetime.now(UTC)


def check(data: EndpointInput) -> EndpointInput:
    """The input cleaned, or WebhookError naming the field: https URL (http outside production), known events."""
    url = data.url.strip()
    if not url:
        raise WebhookError("url", "Enter the address that should receive the events.")
    if len(url) > MAX_URL:
        raise WebhookError("url", f"Use at most {MAX_URL} characters.")
    allow_http = current_app.config["PUBLIC_BASE_URL"].startswith("http://")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number
    except ValueError:
        raise WebhookError("url", "Enter a full address like https://example.com/webhooks.") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in url):
        wanted = "https:// (or http:// here, outside production)" if allow_http else "https://"
        raise WebhookError("url", f"Enter a full address starting with {wanted}, like https://example.com/webhooks.")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("url", "Leave the user name and password out of the address; we sign every request.")
    # The address rules of everything we send to or fetch from a user-given URL (saas.safefetch): no private,
    # loopback or metadata addresses, standard ports. Checked again, with DNS, at every delivery.
    policy = safefetch.app_policy()
    try:
        safefetch.parse(url, policy)
    except safefetch.FetchRefused as exc:
        raise WebhookError("url", str(exc)) from None
    host = (parts.hostname or "").rstrip(".").lower()
    if port is not None and port not in policy.allowed_ports and host not in policy.loopback_hosts:
        allowed = " or ".join(str(p) for p in sorted(policy.allowed_ports, reverse=True))
        raise WebhookError("url", f"Use the standard port ({allowed}): port {port} is not sent to.")
    events = tuple(dict.fromkeys(e.strip() for e in data.events if e.strip()))
    if not events:
        raise WebhookError("events", "Choose at least one event to send.")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise WebhookError("events", f"Unknown event {unknown[0]!r}: choose from {', '.join(EVENT_TYPES)}.")
    description = data.description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise WebhookError("description", f"Use at most {MAX_DESCRIPTION} characters.")
    return EndpointInput(url, events, description)


# --- secrets -----------------------------------------------------------------------------------------------


def secret_bound_to(endpoint: WebhookEndpoint) -> str:
    # Sealed for this row of this tenant only: copied elsewhere it will not open.
    return f"webhook:{endpoint.tenant_id}:{endpoint.id}"


def _seal(endpoint: WebhookEndpoint, secret: str) -> str:
    return keyring().seal(secret.encode(), secret_bound_to(endpoint))


def secret_of(endpoint: WebhookEndpoint) -> str:
    return keyring().open(endpoint.secret_sealed, secret_bound_to(endpoint)).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets to sign with, newest first: the current one, and the previous one during its grace."""
    secrets = [secret_of(endpoint)]
    if (
        endpoint.previous_secret_sealed
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(keyring().open(endpoint.previous_secret_sealed, secret_bound_to(endpoint)).decode())
    return secrets


def rotate_secret(session: so.Session, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing (a second signature) for OLD_SECRET_GRACE. Returns the new one."""
    endpoint = endpoint_or_404(session, endpoint_id)
    secret = signing.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_expires_at = utcnow() + OLD_SECRET_GRACE
    endpoint.secret_sealed = _seal(endpoint, secret)
    session.flush()
    return endpoint, secret


# --- endpoints ---------------------------------------------------------------------------------------------


def endpoints(session: so.Session) -> list[WebhookEndpoint]:
    return list(session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def endpoint_or_404(session: so.Session, endpoint_id: int) -> WebhookEndpoint:
    """One of the workspace's endpoints; LookupError when it has none with that id."""
    found = session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    if found is None:
        raise LookupError(endpoint_id)
    return found


def create(session: so.Session, data: EndpointInput, created_by_id: int | None) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its secret (shown once; owners and admins can reveal it later)."""
    data = check(data)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        url=data.url, events=list(data.events), description=data.description, created_by_id=created_by_id,
        secret_sealed="",  # sealed below, once the id it is bound to exists
    )  # fmt: skip
    session.add(endpoint)
    session.flush()
    endpoint.secret_sealed = _seal(endpoint, secret)
    session.flush()
    return endpoint, secret


def update(session: so.Session, endpoint_id: int, data: EndpointInput) -> WebhookEndpoint:
    endpoint = endpoint_or_404(session, endpoint_id)
    data = check(data)
    endpoint.url, endpoint.events, endpoint.description = data.url, list(data.events), data.description
    session.flush()
    return endpoint


def set_enabled(session: so.Session, endpoint_id: int, enabled: bool) -> WebhookEndpoint:
    """Switch an endpoint off (nothing is sent or queued for it) or back on (it starts with a clean record)."""
    endpoint = endpoint_or_404(session, endpoint_id)
    endpoint.enabled = enabled
    if enabled:
        endpoint.disabled_reason = None
        endpoint.failing_since = None  # a fresh start: the days of failure count again from the next one
    else:
        endpoint.disabled_reason = "Switched off by a person."
    session.flush()
    return endpoint


def delete(session: so.Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoint_or_404(session, endpoint_id)
    session.delete(endpoint)  # deliveries and attempts go with it (ON DELETE CASCADE)
    session.flush()
    return endpoint


# --- deliveries --------------------------------------------------------------------------------------------


def deliveries(session: so.Session, endpoint_id: int, limit: int = 100) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first, each with its event and attempts."""
    return list(
        session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .options(so.selectinload(WebhookDelivery.attempts), so.joinedload(WebhookDelivery.event))
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def last_deliveries(session: so.Session) -> dict[int, WebhookDelivery]:
    """Each endpoint's newest delivery, for the list page."""
    newest = sa.select(sa.func.max(WebhookDelivery.id)).group_by(WebhookDelivery.endpoint_id).scalar_subquery()
    rows = session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.id.in_(newest)).options(so.joinedload(WebhookDelivery.event))
    )
    return {d.endpoint_id: d for d in rows}


def send_test(session: so.Session, endpoint_id: int) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint alone, delivered like any other (signed, retried, logged)."""
    endpoint = endpoint_or_404(session, endpoint_id)
    if not endpoint.enabled:
        raise WebhookError("endpoint", "Switch the endpoint on first: nothing is sent to an endpoint that is off.")
    event = WebhookEvent(
        type=TEST_EVENT,
        dedupe_key=f"{TEST_EVENT}:{uuid.uuid4().hex}",
        payload={"message": "A test event from Multipost. Your endpoint received and verified it.",
                 "endpoint_id": endpoint.id},
    )  # fmt: skip
    session.add(event)
    session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=utcnow())
    session.add(delivery)
    session.flush()
    return delivery


def replay(session: so.Session, delivery_ids: Sequence[int], endpoint_id: int | None = None) -> list[WebhookDelivery]:
    """Send these deliveries again (same message id, fresh signature and retries). LookupError for an unknown id;
    WebhookError when one is already on its way or its endpoint is off."""
    query = sa.select(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)).with_for_update()
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    found = list(session.scalars(query))
    if len(found) != len(set(delivery_ids)):
        raise LookupError(sorted(set(delivery_ids) - {d.id for d in found}))
    enabled = set(session.scalars(sa.select(WebhookEndpoint.id).where(WebhookEndpoint.enabled)))
    for delivery in found:
        if delivery.state in NOT_REPLAYABLE:
            raise WebhookError("delivery", f"Delivery {delivery.id} is already on its way; wait for its outcome.")
        if delivery.endpoint_id not in enabled:
            raise WebhookError("delivery", "Switch the endpoint on first: nothing is sent to an endpoint that is off.")
        delivery.state, delivery.next_attempt_at, delivery.attempt_count = DeliveryState.PENDING, utcnow(), 0
    session.flush()
    return found


# Every event of the window the endpoint subscribes to: missing deliveries made, finished ones sent again.
RESEND_WINDOW = sa.text("""
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, state, next_attempt_at)
    SELECT e.tenant_id, w.id, e.id, 'pending', now()
    FROM webhook_events e JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id
    WHERE e.tenant_id = :tenant AND w.id = :endpoint AND e.type = ANY(w.events)
      AND e.created_at >= :since AND e.created_at < :until
    ON CONFLICT (endpoint_id, event_id) DO UPDATE
        SET state = 'pending', next_attempt_at = now(), attempt_count = 0
        WHERE webhook_deliveries.state IN ('succeeded', 'failed')
    RETURNING id
""")


def resend_window(session: so.Session, endpoint_id: int, since: datetime, until: datetime) -> int:
    """Send the endpoint every subscribed event of [since, until) again, including any it missed while off."""
    endpoint = endpoint_or_404(session, endpoint_id)
    if not endpoint.enabled:
        raise WebhookError("endpoint", "Switch the endpoint on first: nothing is sent to an endpoint that is off.")
    if since >= until:
        raise WebhookError("since", "The window's start must be before its end.")
    rows = session.execute(
        RESEND_WINDOW, {"tenant": bound_tenant_id(session), "endpoint": endpoint.id, "since": since, "until": until}
    ).all()
    return len(rows)


def body_of(event: WebhookEvent) -> bytes:
    """The request body: the same bytes on every attempt, so a receiver's dedupe and checks see one message."""
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.payload},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
