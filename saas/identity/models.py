"""Server-side sessions, two-factor credentials and the account security log. All per user, none per tenant."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, utc_now_default


class UserSession(Base):
    """One signed-in browser. The cookie carries a random handle; only its SHA-256 is stored here.

    A session is alive while it is not revoked, not past `expires_at` (the absolute timeout) and, unless
    `remember` was ticked, seen within the idle timeout. Revoking the row ends it at the next request.
    """

    __tablename__ = "user_sessions"
    __table_args__ = (sa.Index("ix_user_sessions_user_id_revoked_at", "user_id", "revoked_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    handle_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    # Written at most once a minute: a write per request would cost more than the precision is worth.
    last_seen_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    # When the password (and second factor) was last entered in this session: re-authentication reads it.
    authenticated_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    remember: so.Mapped[bool] = so.mapped_column(default=False)
    ip: so.Mapped[str] = so.mapped_column(sa.String(45))
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(400))
    device: so.Mapped[str] = so.mapped_column(sa.String(120))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))


class TwoFactorCredential(Base):
    """A user's authenticator-app secret (sealed, bound to the user). `enabled_at` is NULL until confirmed."""

    __tablename__ = "two_factor_credentials"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_sealed: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    enabled_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # The newest 30-second step a code was accepted for: that step and older ones are refused (no replay).
    last_used_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)


class RecoveryCode(Base):
    """One single-use code for when the authenticator is lost. Only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    used_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))


class AccountEvent(Base):
    """A security-relevant thing that happened to an account (log-in, failed log-in, 2FA change...).

    Append-only. `user_id` is NULL for a failed log-in naming no account. Never holds a password or code.
    """

    __tablename__ = "account_events"
    __table_args__ = (sa.Index("ix_account_events_user_id_at", "user_id", "at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    ip: so.Mapped[str] = so.mapped_column(sa.String(45))
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(400))
    at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
