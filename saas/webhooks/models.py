"""Webhook endpoints, the events emitted for them, each event's delivery to each endpoint, and every attempt."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from saas.db import Base, db_enum, utc_now_default
from tenants.scoping import TenantScoped


class WebhookEndpoint(TenantScoped, Base):
    """A URL of the workspace's that receives the events it subscribed to, signed with its own secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    url: so.Mapped[str] = so.mapped_column(sa.String(2000))
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="", server_default="")
    events: so.Mapped[list[str]] = so.mapped_column(ARRAY(sa.String(40)))
    # The signing secret ("whsec_…"), AES-GCM sealed and bound to "webhook:<tenant>:<id>" (saas.crypto).
    secret_sealed: so.Mapped[str] = so.mapped_column(sa.Text)
    # After a rotation the old secret still signs (a second signature) until this moment.
    previous_secret_sealed: so.Mapped[str | None] = so.mapped_column(sa.Text)
    previous_secret_expires_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    enabled: so.Mapped[bool] = so.mapped_column(default=True, server_default=sa.true())
    disabled_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # The first failed attempt since the last success; None while it works. Disabling counts from here.
    failing_since: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    last_attempt_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    last_status_code: so.Mapped[int | None]
    last_success_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class WebhookEvent(TenantScoped, Base):
    """Something that happened in the workspace, stored only when an endpoint wanted it (the outbox)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        # The same happening reported twice (a retried job) is one event.
        sa.UniqueConstraint("tenant_id", "dedupe_key"),
        sa.Index("ix_webhook_events_tenant_created", "tenant_id", "created_at"),
        sa.Index("ix_webhook_events_created", "created_at"),  # pruning the oldest, across workspaces
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # What receivers see as `webhook-id` ("msg_<hex>"): stable across retries and replays, so they can dedupe.
    public_id: so.Mapped[uuid.UUID] = so.mapped_column(
        UUID(as_uuid=True), unique=True, default=uuid.uuid4, server_default=sa.text("gen_random_uuid()")
    )
    type: so.Mapped[str] = so.mapped_column(sa.String(40))
    dedupe_key: so.Mapped[str] = so.mapped_column(sa.String(200))
    payload: so.Mapped[dict[str, Any]] = so.mapped_column(JSONB)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    @property
    def message_id(self) -> str:
        return f"msg_{self.public_id.hex}"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    DELIVERING = "delivering"  # claimed by the clock, a job is posting it
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every retry failed; a person may replay it


class WebhookDelivery(TenantScoped, Base):
    """One event going to one endpoint: its state, when it is next tried, and its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"], ["webhook_endpoints.tenant_id", "webhook_endpoints.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"], ["webhook_events.tenant_id", "webhook_events.id"], ondelete="CASCADE"
        ),
        # The clock's scan: only deliveries waiting for their time.
        sa.Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=sa.text("state = 'pending'")),
        sa.Index(
            "ix_webhook_deliveries_claimed_until", "claimed_until", postgresql_where=sa.text("state = 'delivering'")
        ),
        sa.Index("ix_webhook_deliveries_tenant_endpoint", "tenant_id", "endpoint_id", "created_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    endpoint_id: so.Mapped[int]
    event_id: so.Mapped[int]
    state: so.Mapped[DeliveryState] = so.mapped_column(
        db_enum(DeliveryState, "webhook_delivery_state"), default=DeliveryState.PENDING
    )
    # Attempts since it was created or last replayed: the retry schedule and giving up count these.
    attempt_count: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), server_default=utc_now_default()
    )
    claim_token: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    claimed_until: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    last_status_code: so.Mapped[int | None]
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    delivered_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    event: so.Mapped[WebhookEvent] = so.relationship(
        primaryjoin="and_(WebhookDelivery.tenant_id == WebhookEvent.tenant_id, "
        "WebhookDelivery.event_id == foreign(WebhookEvent.id))",
        viewonly=True,
    )

    @property
    def status_label(self) -> str:
        """How the pages name the state."""
        if self.state is DeliveryState.PENDING:
            return "Retrying" if self.attempt_count else "Waiting"
        return {DeliveryState.DELIVERING: "Sending", DeliveryState.SUCCEEDED: "Delivered"}.get(self.state, "Gave up")

    attempts: so.Mapped[list[WebhookAttempt]] = so.relationship(
        primaryjoin="and_(WebhookDelivery.tenant_id == WebhookAttempt.tenant_id, "
        "WebhookDelivery.id == foreign(WebhookAttempt.delivery_id))",
        order_by="WebhookAttempt.id",
        viewonly=True,
    )


class WebhookAttempt(TenantScoped, Base):
    """One POST to an endpoint (append-only): status, time taken, the start of the answer, or the error."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        sa.Index("ix_webhook_attempts_tenant_delivery", "tenant_id", "delivery_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    delivery_id: so.Mapped[int]
    attempt_no: so.Mapped[int]
    replay: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    started_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    duration_ms: so.Mapped[int]
    status_code: so.Mapped[int | None]
    succeeded: so.Mapped[bool]
    response_snippet: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
