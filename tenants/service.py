"""Create tenants, resolve who may enter a workspace, and manage its members."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.passwords import NO_PASSWORD
from tenants import agency, tokens
from tenants.models import ClientMode, Invitation, Membership, Role, StaffAssignment, Tenant, TenantKind, User
from tenants.scoping import bind_tenant, bound_tenant_id, system_session

INVITATION_LIFETIME = timedelta(days=7)


class MembershipError(ValueError):
    """A team change that cannot be made; the message is safe to show."""


@dataclass(frozen=True)
class Workspace:
    """Which tenant a user is in, and as what. Plain values: safe across sessions."""

    tenant_id: int
    slug: str
    name: str
    kind: TenantKind
    timezone: str
    role: Role
    # Set when agency staff act in a client they manage: the banner reads "<agency_name> for <name>",
    # and every change is audited as made for the client.
    agency_id: int | None = None
    agency_name: str | None = None
    # A client in managed mode: the agency drafts and publishes, the client's own people approve.
    managed: bool = False
    # Whoever enters must have two-factor authentication on: the tenant asks it of its members, or the
    # agency of its staff (in the agency and in every client they enter for it).
    requires_two_factor: bool = False

    @property
    def acting_for_client(self) -> bool:
        return self.agency_id is not None

    @property
    def publishes_through_agency(self) -> bool:
        """The client's own people may not publish directly here (managed mode); agency staff may."""
        return self.managed and not self.acting_for_client


@dataclass(frozen=True)
class InvitationView:
    id: int
    tenant_id: int
    tenant_name: str
    email: str
    role: Role
    invited_by_name: str | None
    expires_at: datetime
    state: str  # "open" | "accepted" | "revoked" | "expired"


def utcnow() -> datetime:
    return datetime.now(UTC)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:50].strip("-") or "workspace"


def _unique_slug(session: so.Session, name: str) -> str:
    base = slugify(name)
    taken = set(session.scalars(sa.select(Tenant.slug).where(Tenant.slug.like(f"{base}%"))).all())
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def create_tenant(
    session: so.Session,
    *,
    name: str,
    kind: TenantKind,
    owner: User | None,
    managed_by: Tenant | None = None,
    timezone: str = "UTC",
) -> Tenant:
    """Create a tenant (and its owner's membership) and bind `session` to it."""
    tenant = Tenant(
        name=name,
        slug=_unique_slug(session, name),
        kind=kind,
        managed_by_id=managed_by.id if managed_by else None,
        timezone=timezone,
    )
    session.add(tenant)
    session.flush()
    bind_tenant(session, tenant.id)
    if owner is not None:
        session.add(Membership(user_id=owner.id, role=Role.OWNER))
        session.flush()
    return tenant


def workspaces_of(user_id: int) -> list[Workspace]:
    """Every tenant the user belongs to, by name. Cross-tenant: it decides access."""
    with system_session() as session:
        rows = session.execute(
            sa.select(Tenant, Membership.role)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user_id)
            .order_by(sa.func.lower(Tenant.name))
        ).all()
        # Plus the clients the user works in for an agency, in two statements however many there are
        # (this list is on every page): the rule is tenants.agency.agency_role_in_client's.
        agency_roles = {tenant.id: (tenant, role) for tenant, role in rows if tenant.kind is TenantKind.AGENCY}
        own = {tenant.id for tenant, _ in rows}
        clients = session.scalars(
            sa.select(Tenant)
            .where(Tenant.managed_by_id.in_(agency_roles), Tenant.id.not_in(own))
            .order_by(sa.func.lower(Tenant.name))
        ).all()
        assigned = set(
            session.scalars(
                sa.select(StaffAssignment.client_id).where(
                    StaffAssignment.user_id == user_id, StaffAssignment.tenant_id.in_(agency_roles)
                )
            )
        )
        reachable = []
        for client in clients:
            assert client.managed_by_id is not None
            agency_tenant, agency_role = agency_roles[client.managed_by_id]
            if agency_role.manages_team or client.id in assigned:
                role = agency.CLIENT_ROLE_OF_AGENCY_ROLE[agency_role]
                reachable.append(_client_workspace(client, role, agency_tenant))
    return [_workspace(tenant, role) for tenant, role in rows] + reachable


def find_workspace(user_id: int, slug: str) -> Workspace | None:
    """The workspace `slug` if the user is a member of it or agency staff let into it, else None (404).

    Agency staff reach a managed client through `tenants.agency`, never through a membership.
    """
    with system_session() as session:
        row = session.execute(
            sa.select(Tenant, Membership.role)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user_id, Tenant.slug == slug)
        ).first()
        if row is not None:
            return _workspace(*row)
        client = session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        role = agency.agency_role_in_client(session, user_id, client) if client is not None else None
        if client is None or role is None:
            return None
        managing = session.get(Tenant, client.managed_by_id)
        assert managing is not None  # agency_role_in_client found the user's membership in it
        return _client_workspace(client, role, managing)


def workspace_view(tenant: Tenant, role: Role, managing: Tenant | None = None) -> Workspace:
    """The workspace as `find_workspace` describes it: a member's own, or (with `managing`, its agency) a client
    entered by its agency's staff. For callers that resolved the role themselves (the API's tokens)."""
    return _workspace(tenant, role) if managing is None else _client_workspace(tenant, role, managing)


def _workspace(tenant: Tenant, role: Role) -> Workspace:
    return Workspace(
        tenant.id,
        tenant.slug,
        tenant.name,
        tenant.kind,
        tenant.timezone,
        role,
        managed=_is_managed(tenant),
        requires_two_factor=tenant.require_two_factor,
    )


def _client_workspace(client: Tenant, role: Role, managing: Tenant) -> Workspace:
    """A managed client as its agency's staff enter it: with the agency named for the banner and the audit log."""
    return Workspace(
        client.id,
        client.slug,
        client.name,
        client.kind,
        client.timezone,
        role,
        client.managed_by_id,
        managing.name,
        _is_managed(client),
        requires_two_factor=client.require_two_factor or managing.require_two_factor,
    )


def _is_managed(tenant: Tenant) -> bool:
    return tenant.kind is TenantKind.CLIENT and tenant.client_mode is ClientMode.MANAGED


def members(session: so.Session) -> list[Membership]:
    return list(
        session.scalars(
            sa.select(Membership).join(Membership.user).order_by(sa.func.lower(User.name), User.email)
        ).all()
    )


def open_invitations(session: so.Session) -> list[Invitation]:
    return list(
        session.scalars(
            sa.select(Invitation)
            .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
            .order_by(Invitation.created_at.desc())
        ).all()
    )


def invite(session: so.Session, *, email: str, role: Role, invited_by: User) -> tuple[Invitation, str]:
    """Invite `email` to the session's tenant; returns the invitation and the secret for its link.

    Inviting an address again replaces its open invitation (the old link stops working).
    """
    email = email.strip().lower()
    already_member = session.scalar(sa.select(Membership.id).join(Membership.user).where(User.email == email))
    if already_member:
        raise MembershipError(f"{email} is already a member of this workspace.")
    if role is Role.OWNER and not _is_owner(session, invited_by.id):
        raise MembershipError("Only an owner can invite another owner.")
    now = utcnow()
    session.execute(
        sa.update(Invitation)
        .where(Invitation.email == email, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    raw, digest = tokens.new_token()
    invitation = Invitation(
        email=email,
        role=role,
        token_hash=digest,
        invited_by_id=invited_by.id,
        expires_at=now + INVITATION_LIFETIME,
    )
    session.add(invitation)
    session.flush()
    return invitation, raw


def add_reviewer(session: so.Session, *, email: str, name: str, added_by: User) -> tuple[Membership, bool]:
    """Make `email` a reviewer here at once (a free seat): no invitation to accept, no password to choose,
    because reviewers act from the links they are emailed. An address without an account gets one without
    a password. Returns the membership and whether the account is new."""
    email = email.strip().lower()
    user = session.scalar(sa.select(User).where(User.email == email))
    if user is not None and session.scalar(sa.select(Membership.id).where(Membership.user_id == user.id)):
        raise MembershipError(f"{email} is already a member of this workspace.")
    created = user is None
    if user is None:
        user = User(email=email, name=name.strip(), password_hash=NO_PASSWORD, timezone=added_by.timezone)
        session.add(user)
        session.flush()
    membership = Membership(user_id=user.id, role=Role.REVIEWER)
    session.add(membership)
    session.flush()
    return membership, created


def revoke_invitation(session: so.Session, invitation_id: int) -> Invitation | None:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        return None
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    return invitation


def invitation_by_token(raw_token: str) -> InvitationView | None:
    """Look up an invitation from its emailed secret. Cross-tenant: the invitee is no member yet."""
    with system_session() as session:
        row = session.execute(
            sa.select(Invitation, Tenant.name)
            .join(Tenant, Tenant.id == Invitation.tenant_id)
            .where(Invitation.token_hash == tokens.digest(raw_token))
        ).first()
        if row is None:
            return None
        invitation, tenant_name = row
        return InvitationView(
            id=invitation.id,
            tenant_id=invitation.tenant_id,
            tenant_name=tenant_name,
            email=invitation.email,
            role=invitation.role,
            invited_by_name=invitation.invited_by.name if invitation.invited_by else None,
            expires_at=invitation.expires_at,
            state=_invitation_state(invitation, utcnow()),
        )


def _invitation_state(invitation: Invitation, now: datetime) -> str:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def accept_invitation(session: so.Session, raw_token: str, user: User) -> Membership:
    """Make `user` a member as the invitation says, once. Binds `session` to its tenant.

    The invitation row is locked so two clicks on the same link make one membership.
    """
    found = invitation_by_token(raw_token)
    if found is None:
        raise MembershipError("This invitation link is not valid.")
    bind_tenant(session, found.tenant_id)
    invitation = session.scalar(sa.select(Invitation).where(Invitation.id == found.id).with_for_update())
    assert invitation is not None  # found a moment ago and invitations are never deleted by hand
    state = _invitation_state(invitation, utcnow())
    if state != "open":
        raise MembershipError(
            {
                "accepted": "This invitation has already been used.",
                "revoked": "This invitation was withdrawn. Ask for a new one.",
                "expired": "This invitation has expired. Ask for a new one.",
            }[state]
        )
    if user.email != invitation.email:
        raise MembershipError(f"This invitation was sent to {invitation.email}. Log in with that address to accept it.")
    membership = session.scalar(sa.select(Membership).where(Membership.user_id == user.id))
    if membership is None:
        membership = Membership(user_id=user.id, role=invitation.role)
        session.add(membership)
    invitation.accepted_at = utcnow()
    invitation.accepted_by_id = user.id
    session.flush()
    return membership


def _is_owner(session: so.Session, user_id: int) -> bool:
    return session.scalar(sa.select(Membership.role).where(Membership.user_id == user_id)) is Role.OWNER


def _lock_owners(session: so.Session) -> list[int]:
    """Lock the owners' rows so two concurrent changes cannot remove the last owner."""
    return list(session.scalars(sa.select(Membership.id).where(Membership.role == Role.OWNER).with_for_update()).all())


def change_role(session: so.Session, membership_id: int, role: Role, actor: User) -> Membership | None:
    membership = session.get(Membership, membership_id)
    if membership is None:
        return None
    if (role is Role.OWNER or membership.role is Role.OWNER) and not _is_owner(session, actor.id):
        raise MembershipError("Only an owner can grant or take away the owner role.")
    owners = _lock_owners(session)
    if membership.role is Role.OWNER and role is not Role.OWNER and owners == [membership.id]:
        raise MembershipError("A workspace needs at least one owner. Make someone else owner first.")
    membership.role = role
    session.flush()
    return membership


def remove_member(session: so.Session, membership_id: int, actor: User) -> Membership | None:
    membership = session.get(Membership, membership_id)
    if membership is None:
        return None
    if membership.role is Role.OWNER and not _is_owner(session, actor.id):
        raise MembershipError("Only an owner can remove an owner.")
    owners = _lock_owners(session)
    if membership.role is Role.OWNER and owners == [membership.id]:
        raise MembershipError("The last owner cannot be removed. Make someone else owner first.")
    session.delete(membership)
    session.flush()
    return membership


def tenant_of(session: so.Session) -> Tenant:
    tenant_id = bound_tenant_id(session)
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    if tenant is None:
        raise LookupError("session is bound to no existing tenant")
    return tenant
