"""An agency and the clients it manages: creating clients, assigning staff, ending the arrangement.

Agency staff enter a client's workspace through `tenants.service.find_workspace`, which asks
`agency_role_in_client` here on every request, so ending the arrangement or an assignment takes
effect at the next click. The client's posts, channels and team are never touched by any of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from tenants import tokens
from tenants.models import (
    ClientMode,
    ManagementInvitation,
    Membership,
    Role,
    StaffAssignment,
    Tenant,
    TenantKind,
    User,
)
from tenants.scoping import bound_tenant_id, system_session


class AgencyError(ValueError):
    """An agency change that cannot be made; the message is safe to show."""


# What an agency member may do inside a client: owners and admins run it; the rest keep their own level.
CLIENT_ROLE_OF_AGENCY_ROLE = {
    Role.OWNER: Role.ADMIN,
    Role.ADMIN: Role.ADMIN,
    Role.EDITOR: Role.EDITOR,
    Role.REVIEWER: Role.REVIEWER,
    Role.VIEWER: Role.VIEWER,
}


def agency_role_in_client(session: so.Session, user_id: int, client: Tenant) -> Role | None:
    """The role agency staff act with in `client`, or None when they may not enter it.

    Owners and admins of the managing agency reach every client; other staff only the ones they are
    assigned to. Needs a system session: it reads across the agency and the client.
    """
    if client.kind is not TenantKind.CLIENT or client.managed_by_id is None:
        return None
    agency_role = session.scalar(
        sa.select(Membership.role).where(Membership.tenant_id == client.managed_by_id, Membership.user_id == user_id)
    )
    if agency_role is None:
        return None
    if not agency_role.manages_team:
        assigned = session.scalar(
            sa.select(StaffAssignment.id).where(
                StaffAssignment.tenant_id == client.managed_by_id,
                StaffAssignment.client_id == client.id,
                StaffAssignment.user_id == user_id,
            )
        )
        if assigned is None:
            return None
    return CLIENT_ROLE_OF_AGENCY_ROLE[agency_role]


def clients(session: so.Session, agency_id: int) -> list[Tenant]:
    """The clients `agency_id` manages, by name. `Tenant` is not tenant-scoped: any session may ask."""
    return list(
        session.scalars(sa.select(Tenant).where(Tenant.managed_by_id == agency_id).order_by(sa.func.lower(Tenant.name)))
    )


def create_client(session: so.Session, agency: Tenant, name: str, timezone: str, mode: ClientMode) -> Tenant:
    """A new client workspace the agency manages. It has no members yet: the agency invites the client's team.

    `session` is bound to the agency; the client is created with a plain insert (the tenants table is
    not tenant-scoped), so the session stays the agency's.
    """
    if agency.kind is not TenantKind.AGENCY:
        raise AgencyError("Only an agency workspace can create client workspaces.")
    name = name.strip()
    if not name:
        raise AgencyError("Give the client workspace a name.")
    from tenants.service import _unique_slug

    client = Tenant(
        name=name,
        slug=_unique_slug(session, name),
        kind=TenantKind.CLIENT,
        managed_by_id=agency.id,
        timezone=timezone,
        client_mode=mode,
    )
    session.add(client)
    session.flush()
    return client


def managed_client(session: so.Session, agency_id: int, client_id: int) -> Tenant | None:
    client = session.get(Tenant, client_id)
    return client if client is not None and client.managed_by_id == agency_id else None


def assignments(session: so.Session) -> dict[int, set[int]]:
    """client id → the agency staff assigned to it (session bound to the agency)."""
    found: dict[int, set[int]] = {}
    for client_id, user_id in session.execute(sa.select(StaffAssignment.client_id, StaffAssignment.user_id)):
        found.setdefault(client_id, set()).add(user_id)
    return found


def assign(session: so.Session, client: Tenant, user_id: int, assigned_by: User, assigned: bool) -> None:
    """Give (or take away) one staff member's access to one managed client (session bound to the agency)."""
    agency_id = bound_tenant_id(session)
    if client.managed_by_id != agency_id:
        raise LookupError(client.id)
    if session.scalar(sa.select(Membership.id).where(Membership.user_id == user_id)) is None:
        raise LookupError(user_id)  # only the agency's own people
    existing = session.scalar(
        sa.select(StaffAssignment).where(StaffAssignment.client_id == client.id, StaffAssignment.user_id == user_id)
    )
    if assigned and existing is None:
        session.add(StaffAssignment(client_id=client.id, user_id=user_id, assigned_by_id=assigned_by.id))
    elif not assigned and existing is not None:
        session.delete(existing)
    session.flush()


def end_management(client_id: int) -> int:
    """End the arrangement: the client becomes a direct workspace, keeping all its data; returns the agency id.

    The caller has checked that the person may end it (the client's owner, or the agency's owner or admin).
    Cross-tenant, as the arrangement spans both: the agency's assignments to the client go with it, and
    since every request asks `agency_role_in_client`, no staff member gets into the client after this.
    """
    with system_session() as session:
        client = session.get(Tenant, client_id, with_for_update=True)
        if client is None or client.managed_by_id is None:
            raise AgencyError("This workspace is not managed by an agency.")
        agency_id = client.managed_by_id
        session.execute(
            sa.delete(StaffAssignment)
            .where(StaffAssignment.tenant_id == agency_id, StaffAssignment.client_id == client.id)
            .execution_options(synchronize_session=False)
        )
        client.kind = TenantKind.DIRECT
        client.managed_by_id = None
        session.commit()
    return agency_id


def staff_for_client(client_id: int) -> dict[int, str]:
    """The agency people who may work in the client (user id → name): its owners and admins, and the
    staff assigned to it. Empty for a workspace no agency manages. Cross-tenant: it reads the agency's team.
    """
    with system_session() as session:
        agency_id = session.scalar(sa.select(Tenant.managed_by_id).where(Tenant.id == client_id))
        if agency_id is None:
            return {}
        assigned = sa.select(StaffAssignment.user_id).where(
            StaffAssignment.tenant_id == agency_id, StaffAssignment.client_id == client_id
        )
        rows = session.execute(
            sa.select(User.id, User.name)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.tenant_id == agency_id,
                sa.or_(Membership.role.in_([Role.OWNER, Role.ADMIN]), User.id.in_(assigned)),
            )
            .order_by(User.name)
        )
        return {user_id: name for user_id, name in rows}


MANAGEMENT_INVITATION_LIFETIME = timedelta(days=14)


@dataclass(frozen=True)
class ManagementOffer:
    """An open invitation to be managed, as its recipient sees it."""

    invitation_id: int
    agency_id: int
    agency_name: str
    email: str
    expires_at: datetime


def invite_direct_workspace(session: so.Session, email: str, invited_by: User, now: datetime) -> str:
    """Invite the owner of a direct workspace at `email` to be managed by the agency `session` is bound to.

    Returns the link's secret (only its digest is stored). The same answer whether or not anyone has that
    address: the agency learns nothing about other customers.
    """
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AgencyError("Enter the email address of the workspace's owner.")
    raw, digest = tokens.new_token()
    session.add(
        ManagementInvitation(
            email=email,
            token_hash=digest,
            invited_by_id=invited_by.id,
            expires_at=now + MANAGEMENT_INVITATION_LIFETIME,
        )
    )
    session.flush()
    return raw


def offer_for_token(raw: str, now: datetime) -> ManagementOffer:
    """The open invitation behind a link; AgencyError saying why when it cannot be used."""
    with system_session() as session:  # the link names no workspace: its token finds the agency
        invitation = session.scalar(
            sa.select(ManagementInvitation).where(ManagementInvitation.token_hash == tokens.digest(raw))
        )
        if invitation is None:
            raise AgencyError("This invitation link is not valid. Check that you copied all of it.")
        if invitation.accepted_at is not None:
            raise AgencyError("This invitation has already been accepted.")
        if invitation.revoked_at is not None or invitation.expires_at <= now:
            raise AgencyError("This invitation has expired. Ask the agency for a new one.")
        agency = session.get(Tenant, invitation.tenant_id)
        assert agency is not None
        return ManagementOffer(invitation.id, agency.id, agency.name, invitation.email, invitation.expires_at)


def accept_management(raw: str, user: User, client_id: int, now: datetime) -> Tenant:
    """The owner of the direct workspace `client_id` lets the inviting agency manage it (self-serve to start:
    the client keeps publishing until the agency and client agree otherwise). Everything in it stays."""
    offer = offer_for_token(raw, now)
    if user.email != offer.email:
        raise AgencyError(f"This invitation was sent to {offer.email}. Log in with that address to accept it.")
    with system_session() as session:  # the arrangement spans the agency and the client
        client = session.get(Tenant, client_id, with_for_update=True)
        owns = session.scalar(
            sa.select(Membership.id).where(
                Membership.tenant_id == client_id, Membership.user_id == user.id, Membership.role == Role.OWNER
            )
        )
        if client is None or owns is None:
            raise LookupError(client_id)
        if client.kind is not TenantKind.DIRECT:
            raise AgencyError(f"{client.name} is already managed by an agency, or is one.")
        invitation = session.get(ManagementInvitation, offer.invitation_id, with_for_update=True)
        assert invitation is not None
        if invitation.accepted_at is not None:
            raise AgencyError("This invitation has already been accepted.")
        invitation.accepted_at = now
        invitation.client_id = client.id
        client.kind = TenantKind.CLIENT
        client.managed_by_id = offer.agency_id
        client.client_mode = ClientMode.SELF_SERVE
        session.commit()
        session.expunge(client)
        return client


def owned_direct_workspaces(user_id: int) -> list[Tenant]:
    """The direct workspaces the user owns: what they may put under an agency's management."""
    with system_session() as session:  # the user's own workspaces, across tenants
        found = list(
            session.scalars(
                sa.select(Tenant)
                .join(Membership, Membership.tenant_id == Tenant.id)
                .where(Membership.user_id == user_id, Membership.role == Role.OWNER, Tenant.kind == TenantKind.DIRECT)
                .order_by(sa.func.lower(Tenant.name))
            )
        )
        session.expunge_all()
        return found
