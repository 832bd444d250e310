"""One notification for one person about one event."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, utc_now_default
from tenants.scoping import TenantScoped


class Notification(TenantScoped, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        # One message per event and person, however many times the event is reported.
        sa.UniqueConstraint("tenant_id", "user_id", "event_key"),
        sa.Index("ix_notifications_tenant_user_unread", "tenant_id", "user_id", "read_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    event_key: so.Mapped[str] = so.mapped_column(sa.String(200))
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    link: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    read_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    emailed_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
