"""One uploaded file of a workspace's media library, and a request to add one from a URL."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, db_enum, utc_now_default
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


STALLED_AFTER = timedelta(minutes=15)


class ImportState(enum.StrEnum):
    QUEUED = "queued"
    FETCHING = "fetching"
    DONE = "done"
    FAILED = "failed"


class MediaImport(TenantScoped, Base):
    """ "Add media from a URL": recorded by the web request, carried out by a worker (saas.media.imports)."""

    __tablename__ = "media_imports"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.Index("ix_media_imports_tenant_created", "tenant_id", "created_at"),
        sa.ForeignKeyConstraint(["tenant_id", "media_id"], ["media_items.tenant_id", "media_items.id"]),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    url: so.Mapped[str] = so.mapped_column(sa.String(2000))
    alt: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    state: so.Mapped[ImportState] = so.mapped_column(
        db_enum(ImportState, "media_import_state"), default=ImportState.QUEUED
    )
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)  # why it failed, in words for the user
    media_id: so.Mapped[int | None]
    requested_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    finished_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))

    @property
    def pending(self) -> bool:
        """Waiting for, or in, its worker; one that has sat this way too long is `stalled` instead."""
        return self.state in (ImportState.QUEUED, ImportState.FETCHING) and not self.stalled

    @property
    def stalled(self) -> bool:
        # Far beyond any fetch's deadline: its worker died or no worker runs. Shown as such; adding the URL
        # again starts afresh.
        waiting = self.state in (ImportState.QUEUED, ImportState.FETCHING)
        return waiting and self.created_at is not None and datetime.now(UTC) - self.created_at > STALLED_AFTER
