"""A channel: one connected social account that a tenant publishes to."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import JSONB

from saas.db import Base, db_enum, utc_now_default
from tenants.scoping import TenantScoped


class ChannelHealth(enum.StrEnum):
    OK = "ok"
    NEEDS_RECONNECT = "needs_reconnect"  # the network no longer accepts our token
    DISABLED = "disabled"  # switched off by a person


class Channel(TenantScoped, Base):
    __tablename__ = "channels"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "network", "remote_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    network: so.Mapped[str] = so.mapped_column(sa.String(32))
    remote_id: so.Mapped[str] = so.mapped_column(sa.String(255))
    handle: so.Mapped[str] = so.mapped_column(sa.String(255))
    display_name: so.Mapped[str] = so.mapped_column(sa.String(255))
    profile_url: so.Mapped[str | None] = so.mapped_column(sa.String(1000))
    # AES-GCM sealed JSON, bound to "channel:<tenant_id>:<id>" (saas.crypto). Never logged.
    credentials_sealed: so.Mapped[str | None] = so.mapped_column(sa.Text)
    health: so.Mapped[ChannelHealth] = so.mapped_column(
        db_enum(ChannelHealth, "channel_health"), default=ChannelHealth.OK
    )
    health_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    health_changed_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # Set from the network's rate-limit reset: the dispatcher leaves this channel alone until then.
    paused_until: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # Paused by a person (the queue page): its waiting posts are held as blocked until it is resumed.
    paused_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # The channel's own IANA zone (an audience elsewhere), overriding the workspace's; None: the workspace's.
    timezone: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    # The account's own posting limits where the network has them (a Mastodon instance's max_characters...).
    limits: so.Mapped[dict[str, int] | None] = so.mapped_column(JSONB)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    def __repr__(self) -> str:
        return f"<Channel {self.id} {self.network}:{self.handle}>"


class NetworkPause(Base):
    """An app-wide rate limit on one network: every tenant's channel there waits until `until`.

    Global on purpose: the limit belongs to our application key, not to a tenant.
    """

    __tablename__ = "network_pauses"

    network: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    until: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    reason: so.Mapped[str] = so.mapped_column(sa.Text)


class MastodonApp(Base):
    """Multipost as registered with one Mastodon instance (POST /api/v1/apps), reused by every tenant there.

    Global on purpose: the registration belongs to our application, not to a tenant. The client
    secret is sealed like channel credentials, bound to the instance URL.
    """

    __tablename__ = "mastodon_apps"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    instance_url: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    redirect_uri: so.Mapped[str] = so.mapped_column(sa.String(1000))
    client_id: so.Mapped[str] = so.mapped_column(sa.String(255))
    client_secret_sealed: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class ConnectLink(TenantScoped, Base):
    """A link the agency emails so the client connects its own account to this workspace without sharing a
    password. Only the digest of its secret is stored; it expires and works once."""

    __tablename__ = "connect_links"
    __table_args__ = (sa.Index("ix_connect_links_tenant_created", "tenant_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    used_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
