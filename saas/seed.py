"""The demo data `make run` creates once: an agency, its clients, a self-serve business."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from saas import accounts, db, entitlements
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, StepRule
from saas.sandbox import connect as sandbox_connect
from tenants import agency as tenant_agency
from tenants import bind_tenant
from tenants import service as tenant_service
from tenants.models import ClientMode, Membership, Role, Tenant, TenantKind, User


@dataclass(frozen=True)
class DemoLogin:
    who: str
    email: str
    password: str
    workspace: str
    role: Role


DEMO_LOGINS = (
    DemoLogin("Agency owner", "owner@northwind.example", "northwind-owner-demo", "Northwind Social", Role.OWNER),
    DemoLogin("Agency staff", "staff@northwind.example", "northwind-staff-demo", "Northwind Social", Role.EDITOR),
    DemoLogin(
        "Client reviewer",
        "reviewer@bluebell.example",
        "bluebell-review-demo",
        "Bluebell Bakery",
        Role.REVIEWER,
    ),
    DemoLogin("Business owner", "owner@coppercycles.example", "copper-cycles-demo", "Copper Cycles", Role.OWNER),
)
ZONES = {
    "Northwind Social": "Europe/London",
    "Bluebell Bakery": "Europe/London",
    "Harbor Dental": "America/New_York",
    "Copper Cycles": "America/Chicago",
}
NAMES = {
    "owner@northwind.example": "Nora Northwind",
    "staff@northwind.example": "Sam Staff",
    "reviewer@bluebell.example": "Rita Bell",
    "owner@coppercycles.example": "Carl Copper",
}


def seed_demo() -> bool:
    """Create the demo once. Returns False when it was already there."""
    with db.new_session() as session:
        if session.scalar(sa.select(Tenant.id).where(Tenant.name == "Northwind Social")):
            return False
        users = {
            login.email: accounts.create_user(
                session, email=login.email, name=NAMES[login.email], password=login.password, verified=True
            )
            for login in DEMO_LOGINS
        }
        for login in DEMO_LOGINS:  # people see times in their own zone
            users[login.email].timezone = ZONES[login.workspace]
        session.commit()
    agency = _tenant("Northwind Social", TenantKind.AGENCY, ZONES["Northwind Social"], users["owner@northwind.example"])
    for name in ("Bluebell Bakery", "Harbor Dental"):
        _tenant(name, TenantKind.CLIENT, ZONES[name], None, managed_by=agency)
    entitlements.sync_agency_quantity(agency.id)  # a no-op until the agency subscribes
    _tenant("Copper Cycles", TenantKind.DIRECT, ZONES["Copper Cycles"], users["owner@coppercycles.example"])
    for login in DEMO_LOGINS:
        if login.role is not Role.OWNER:
            _add_member(login.workspace, users[login.email], login.role)
    for workspace in ("Bluebell Bakery", "Harbor Dental", "Copper Cycles"):
        _add_sandbox_channel(workspace)
    _agency_setup(agency, users["staff@northwind.example"], users["owner@northwind.example"])
    return True


def _agency_setup(agency: Tenant, staff: User, owner: User) -> None:
    """Sam works on Bluebell only; Bluebell's reviewer approves every post; Harbor Dental publishes itself."""
    with db.new_session() as session:
        bind_tenant(session, agency.id)
        clients = {c.name: c for c in tenant_agency.clients(session, agency.id)}
        tenant_agency.assign(session, clients["Bluebell Bakery"], staff.id, owner, True)
        clients["Harbor Dental"].client_mode = ClientMode.SELF_SERVE
        session.commit()
        bluebell_id = clients["Bluebell Bakery"].id
    with db.new_session() as session:
        bind_tenant(session, bluebell_id)
        step = approvals.Step("Client approval", StepRule.ANY, roles=(Role.REVIEWER,))
        approvals.set_policy(session, ApprovalMode.REQUIRED, [step])
        session.commit()


def _add_sandbox_channel(workspace: str) -> None:
    with db.new_session() as session:
        tenant = session.scalars(sa.select(Tenant).where(Tenant.name == workspace)).one()
        bind_tenant(session, tenant.id)
        sandbox_connect.connect_new_account(session, workspace)
        session.commit()


def _tenant(name: str, kind: TenantKind, zone: str, owner: User | None, managed_by: Tenant | None = None) -> Tenant:
    # One session per tenant: a session is bound to a single tenant for life.
    with db.new_session() as session:
        tenant = tenant_service.create_tenant(
            session, name=name, kind=kind, owner=owner, managed_by=managed_by, timezone=zone
        )
        session.commit()
        return tenant


def _add_member(workspace: str, user: User, role: Role) -> None:
    with db.new_session() as session:
        tenant = session.scalars(sa.select(Tenant).where(Tenant.name == workspace)).one()
        bind_tenant(session, tenant.id)
        session.add(Membership(user_id=user.id, role=role))
        session.commit()


def describe(created: bool, base_url: str) -> str:
    lines = [
        "Demo data " + ("created." if created else "already present."),
        f"Open {base_url}/login and use one of these demo logins:",
    ]
    for login in DEMO_LOGINS:
        lines.append(f"  {login.who:<16} {login.email:<28} {login.password:<22} ({login.workspace}, {login.role})")
    lines.append(f"Sandbox channels publish to {base_url}/sandbox/@bluebellbakery (and @harbordental, @coppercycles).")
    lines.append('Channels → Connect Mastodon / Connect Bluesky offer the local fakes `make run` starts ("(local)").')
    lines.append(
        "Billing → Choose Pro opens the local fake Stripe's Checkout page: Pay subscribes, Decline shows a refusal."
    )
    return "\n".join(lines)
