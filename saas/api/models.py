"""API tokens (only their SHA-256 is stored) and the responses kept for `Idempotency-Key` replays."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from saas.db import Base, utc_now_default
from tenants.scoping import TenantScoped


class Scope(enum.StrEnum):
    READ = "read"  # list and read everything the token's workspace holds
    WRITE = "write"  # create, change and delete posts, media, slots; pause channels; submit for approval
    APPROVE = "approve"  # approve or ask for changes, comment


class ApiToken(TenantScoped, Base):
    """A secret a program sends as `Authorization: Bearer mp_…`; it acts as `user_id` within its scopes."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    # The first characters of the secret, shown in the settings page so a person can tell tokens apart.
    prefix: so.Mapped[str] = so.mapped_column(sa.String(16))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    scopes: so.Mapped[list[str]] = so.mapped_column(ARRAY(sa.String(16)))
    # Whom the token acts as: its writes are authored by them, and it stops working when they leave.
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class IdempotentResponse(TenantScoped, Base):
    """The first answer to a POST sent with an `Idempotency-Key`, replayed when the same request comes again."""

    __tablename__ = "api_idempotent_responses"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "token_id", "key"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # The workspace acted in is the row's tenant; an agency's token acting in a client lives in the agency,
    # hence a plain foreign key to the token rather than a (tenant_id, id) pair.
    token_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: so.Mapped[str] = so.mapped_column(sa.String(255))
    # SHA-256 of method, path and body: the same key with another request is refused, not replayed.
    request_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    status: so.Mapped[int | None] = so.mapped_column(sa.SmallInteger)
    body: so.Mapped[dict[str, Any] | None] = so.mapped_column(JSONB)
    headers: so.Mapped[dict[str, str] | None] = so.mapped_column(JSONB)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
