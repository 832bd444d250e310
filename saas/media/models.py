"""One uploaded file of a workspace's media library."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, utc_now_default
from tenants.scoping import TenantScoped


class MediaItem(TenantScoped, Base):
    __tablename__ = "media_items"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.Index("ix_media_items_tenant_created", "tenant_id", "created_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    filename: so.Mapped[str] = so.mapped_column(sa.String(255))  # as uploaded, for people
    # Where the storage keeps it (saas.media.storage): never derived from the uploaded name.
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(255))
    mime_type: so.Mapped[str] = so.mapped_column(sa.String(64))
    size_bytes: so.Mapped[int]
    width: so.Mapped[int | None]
    height: so.Mapped[int | None]
    alt: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    uploaded_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    @property
    def is_video(self) -> bool:
        return self.mime_type.startswith("video/")
