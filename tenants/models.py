"""Tenants, the global users who work in them, and what ties the two together."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, db_enum, utc_now_default
from tenants.scoping import TenantScoped


class TenantKind(enum.StrEnum):
    AGENCY = "agency"  # runs clients' calendars as a managed service
    CLIENT = "client"  # a business managed by an agency (managed_by set)
    DIRECT = "direct"  # a self-serve business


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    REVIEWER = "reviewer"  # approves and comments, cannot publish; a free seat
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def manages_team(self) -> bool:
        return self in (Role.OWNER, Role.ADMIN)


class ClientMode(enum.StrEnum):
    MANAGED = "managed"  # the agency drafts, client reviewers approve; client users cannot publish directly
    SELF_SERVE = "self_serve"  # client users publish; the agency may help


class Tenant(Base):
    """One organisation's sealed-off workspace: its users, channels and calendar."""

    __tablename__ = "tenants"
    __table_args__ = (
        sa.CheckConstraint("(kind = 'client') = (managed_by_id IS NOT NULL)", name="client_has_managing_agency"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    slug: so.Mapped[str] = so.mapped_column(sa.String(63), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    kind: so.Mapped[TenantKind] = so.mapped_column(db_enum(TenantKind, "tenant_kind"))
    managed_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64), default="UTC")
    # For a client: who publishes (tenants.models.ClientMode). Kept when the arrangement ends, unused then.
    client_mode: so.Mapped[ClientMode] = so.mapped_column(
        db_enum(ClientMode, "client_mode"), default=ClientMode.MANAGED, server_default=ClientMode.MANAGED.value
    )
    # Members without two-factor authentication are sent to set it up before they may enter. For an agency
    # it also holds its staff in every client they enter.
    require_two_factor: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    def __repr__(self) -> str:
        return f"<Tenant {self.id} {self.slug}>"


class User(Base):
    """A person. Global: the same login may belong to several tenants."""

    __tablename__ = "users"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)  # stored lower-cased
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64), default="UTC")
    email_verified_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # Part of the login cookie (get_id). Whether a login still counts is decided by its server-side
    # session row (saas.identity.sessions), which is what log-out, revocation and password changes end.
    session_version: so.Mapped[int] = so.mapped_column(default=1)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))

    # Scoped like every load of a tenant table: only the bound tenant's membership shows.
    memberships: so.Mapped[list[Membership]] = so.relationship(back_populates="user", passive_deletes=True)

    # What flask-login asks of a user object (kept here so `tenants` needs no Flask).
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Membership(TenantScoped, Base):
    """A user's role in one tenant."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "user_id"),
        sa.UniqueConstraint("tenant_id", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: so.Mapped[Role] = so.mapped_column(db_enum(Role, "role"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    user: so.Mapped[User] = so.relationship(lazy="joined", back_populates="memberships")


class Invitation(TenantScoped, Base):
    """An emailed, expiring, single-use offer to join a tenant with a role."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        # At most one open invitation per address and tenant; inviting again replaces it.
        sa.Index(
            "uq_invitations_open_email",
            "tenant_id",
            "email",
            unique=True,
            postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254))
    role: so.Mapped[Role] = so.mapped_column(db_enum(Role, "role"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    invited_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    accepted_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    accepted_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))

    invited_by: so.Mapped[User | None] = so.relationship(foreign_keys=[invited_by_id])

    def is_open(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class UserToken(Base):
    """A single-use, expiring secret mailed to a user. Only its SHA-256 is stored."""

    __tablename__ = "user_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: so.Mapped[TokenPurpose] = so.mapped_column(db_enum(TokenPurpose, "token_purpose"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    used_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))


class StaffAssignment(TenantScoped, Base):
    """An agency (the tenant) lets one of its staff work in one client it manages.

    Agency staff reach a client through this row, never through a copied membership: when the
    arrangement ends these rows go, and the client's own data stays.
    """

    __tablename__ = "staff_assignments"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "client_id", "user_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    client_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class AuditEntry(TenantScoped, Base):
    """One change made in a workspace, by whom, and for agency staff on whose behalf ("staff X for client Y").

    Append-only; the workspace's owner and admins read it.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_entries_tenant_created", "tenant_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: so.Mapped[str] = so.mapped_column(sa.String(254))  # kept when the user goes
    agency_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("tenants.id", ondelete="SET NULL"))
    agency_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    action: so.Mapped[str] = so.mapped_column(sa.String(200))
    path: so.Mapped[str] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class ManagementInvitation(TenantScoped, Base):
    """An agency (the tenant) asks the owner of a direct workspace to let it manage that workspace.

    Mailed to `email`; only the digest of the link's secret is stored. The owner picks which of their
    direct workspaces it is for when accepting.
    """

    __tablename__ = "management_invitations"
    __table_args__ = (sa.Index("ix_management_invitations_tenant_created", "tenant_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    invited_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    accepted_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    client_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("tenants.id", ondelete="SET NULL"))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
