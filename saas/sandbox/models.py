"""Accounts, tokens and posts of the built-in Sandbox network."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import JSONB

from saas.db import Base, utc_now_default


class SandboxAccount(Base):
    __tablename__ = "sandbox_accounts"

    id: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    handle: so.Mapped[str] = so.mapped_column(sa.String(60), unique=True)
    display_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # SHA-256 of the current tokens; the network itself never needs them in clear.
    access_token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    refresh_token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    access_expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class SandboxPost(Base):
    __tablename__ = "sandbox_posts"
    __table_args__ = (sa.Index("ix_sandbox_posts_account_created", "account_id", "created_at"),)

    id: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    account_id: so.Mapped[str] = so.mapped_column(sa.ForeignKey("sandbox_accounts.id", ondelete="CASCADE"))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    media_urls: so.Mapped[list[str]] = so.mapped_column(JSONB, default=list)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class SandboxIdempotencyKey(Base):
    """Idempotency-Key → the post it created, per account, honoured for one hour (as Mastodon does)."""

    __tablename__ = "sandbox_idempotency_keys"

    account_id: so.Mapped[str] = so.mapped_column(
        sa.ForeignKey("sandbox_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    key: so.Mapped[str] = so.mapped_column(sa.String(128), primary_key=True)
    post_id: so.Mapped[str] = so.mapped_column(sa.ForeignKey("sandbox_posts.id", ondelete="CASCADE"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
