"""The session-bound tenant scope: every ORM statement sees one tenant, or fails closed."""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa

from saas import db
from saas.config import PROJECT_ROOT
from tenants import TenantScopeError, bind_tenant, system_session, tenant_session
from tenants.models import Invitation, Membership, Role, User
from tests.factories import add_member, app_context, make_tenant, make_user, make_workspace


@pytest.fixture
def two_tenants(app):
    tenant_a, owner_a = make_workspace()
    tenant_b, owner_b = make_workspace()
    shared = make_user()  # a person who works in both
    add_member(tenant_a, shared, Role.EDITOR)
    add_member(tenant_b, shared, Role.VIEWER)
    return tenant_a, tenant_b, shared


def test_unbound_session_touching_tenant_table_raises(two_tenants):
    with app_context(), db.new_session() as session:
        with pytest.raises(TenantScopeError):
            session.scalars(sa.select(Membership)).all()
        with pytest.raises(TenantScopeError):
            session.execute(sa.update(Membership).values(role=Role.OWNER))
        with pytest.raises(TenantScopeError):
            session.execute(sa.delete(Invitation))


def test_unbound_session_may_read_global_tables(two_tenants):
    with app_context(), db.new_session() as session:
        assert len(session.scalars(sa.select(User)).all()) == 3


def test_select_sees_only_the_bound_tenant(two_tenants):
    tenant_a, tenant_b, _ = two_tenants
    with app_context():
        with tenant_session(tenant_a.id) as session:
            assert {m.tenant_id for m in session.scalars(sa.select(Membership))} == {tenant_a.id}
            # Even an explicit filter for the other tenant finds nothing.
            assert session.scalars(sa.select(Membership).where(Membership.tenant_id == tenant_b.id)).all() == []


def test_same_statement_in_two_sessions_binds_each_tenant(two_tenants):
    """Guards the cached-lambda pitfall: the criterion must be a fresh bound parameter each time."""
    tenant_a, tenant_b, _ = two_tenants
    statement = sa.select(Membership.tenant_id).distinct()
    with app_context():
        with tenant_session(tenant_a.id) as session:
            assert session.scalars(statement).all() == [tenant_a.id]
        with tenant_session(tenant_b.id) as session:
            assert session.scalars(statement).all() == [tenant_b.id]
        with tenant_session(tenant_a.id) as session:
            assert session.scalars(statement).all() == [tenant_a.id]


def test_bulk_update_and_delete_touch_only_the_bound_tenant(two_tenants):
    tenant_a, tenant_b, _ = two_tenants
    with app_context():
        with tenant_session(tenant_a.id) as session:
            session.execute(sa.update(Membership).values(role=Role.VIEWER))
            session.execute(sa.delete(Membership).where(Membership.role == Role.VIEWER))
            session.commit()
        with system_session() as session:
            left = session.execute(sa.select(Membership.tenant_id, Membership.role)).all()
    assert all(tenant_id == tenant_b.id for tenant_id, _ in left)
    assert sorted(role for _, role in left) == [Role.OWNER, Role.VIEWER]


def test_relationship_load_is_scoped(two_tenants):
    tenant_a, tenant_b, shared = two_tenants
    with app_context():
        with tenant_session(tenant_b.id) as session:
            user = session.get(User, shared.id)
            assert [(m.tenant_id, m.role) for m in user.memberships] == [(tenant_b.id, Role.VIEWER)]
        with db.new_session() as session:
            user = session.get(User, shared.id)
            with pytest.raises(TenantScopeError):
                _ = user.memberships


def test_insert_is_stamped_with_the_bound_tenant(two_tenants):
    tenant_a, _, _ = two_tenants
    newcomer = make_user()
    with app_context(), tenant_session(tenant_a.id) as session:
        membership = Membership(user_id=newcomer.id, role=Role.VIEWER)
        session.add(membership)
        session.commit()
        assert membership.tenant_id == tenant_a.id


def test_insert_naming_another_tenant_is_refused(two_tenants):
    tenant_a, tenant_b, _ = two_tenants
    newcomer = make_user()
    with app_context(), tenant_session(tenant_a.id) as session:
        session.add(Membership(tenant_id=tenant_b.id, user_id=newcomer.id, role=Role.OWNER))
        with pytest.raises(TenantScopeError):
            session.flush()
    with app_context(), tenant_session(tenant_b.id) as session:
        assert newcomer.id not in session.scalars(sa.select(Membership.user_id)).all()


def test_insert_without_a_tenant_is_refused(two_tenants):
    newcomer = make_user()
    with app_context(), db.new_session() as session:
        session.add(Membership(user_id=newcomer.id, role=Role.OWNER))
        with pytest.raises(TenantScopeError):
            session.flush()


def test_a_row_cannot_move_to_another_tenant(two_tenants):
    tenant_a, tenant_b, shared = two_tenants
    with app_context(), tenant_session(tenant_a.id) as session:
        membership = session.scalars(sa.select(Membership).where(Membership.user_id == shared.id)).one()
        membership.tenant_id = tenant_b.id
        with pytest.raises(TenantScopeError):
            session.flush()


def test_a_session_cannot_be_rebound_to_another_tenant(two_tenants):
    tenant_a, tenant_b, _ = two_tenants
    with app_context(), tenant_session(tenant_a.id) as session:
        bind_tenant(session, tenant_a.id)  # the same tenant again is fine
        with pytest.raises(TenantScopeError):
            bind_tenant(session, tenant_b.id)


def test_system_session_sees_every_tenant(two_tenants):
    tenant_a, tenant_b, _ = two_tenants
    with app_context(), system_session() as session:
        assert set(session.scalars(sa.select(Membership.tenant_id))) == {tenant_a.id, tenant_b.id}


def test_database_refuses_a_client_without_agency(app):
    owner = make_user()
    with pytest.raises(sa.exc.IntegrityError):
        make_tenant(owner=owner, kind="client")


# Every place that reads across tenants, reviewed. A new one must be added here on purpose.
SYSTEM_SCOPE_CALL_SITES = {
    "tenants/scoping.py",  # the definition
    "tenants/service.py:workspaces_of",
    "tenants/service.py:find_workspace",
    "tenants/service.py:invitation_by_token",
    "saas/channels/service.py:rotate_keys",  # re-seals every tenant's credentials
    "saas/channels/service.py:sealed_with_older_keys",  # counts, across tenants, what rotation has left
    "saas/publishing/dispatch.py:dispatch_due_targets",  # claims due targets of every tenant
    "saas/posts/ical.py:tenant_for_token",  # a calendar feed URL names no workspace: its token finds it
    "saas/posts/recurrence.py:due_series",  # finds repeating posts of every tenant whose next occurrence is due
    "saas/web/billing.py:stripe_webhook",  # a Stripe event names a subscription, not a workspace
    "saas/approvals/service.py:grant_for_token",  # a review link names no workspace: its token finds it
    "saas/agency/console.py:overview",  # one view across the clients an agency member may work in
    "tenants/agency.py:end_management",  # the arrangement spans the agency and the client
    "tenants/agency.py:staff_for_client",  # a client's approvers may be its agency's people
    "tenants/agency.py:offer_for_token",  # a management invitation names no workspace: its token finds it
    "tenants/agency.py:accept_management",  # the arrangement spans the agency and the client
    "tenants/agency.py:owned_direct_workspaces",  # the user's own workspaces, across tenants
    "saas/channels/connect_links.py:grant_for",  # a connect link names no workspace: its token finds it
    "saas/approvals/reminders.py:tenants_with_open_requests",  # which workspaces have approvals to remind of
    "saas/entitlements.py:sync_agency_quantity",  # a client's change bills its agency
    "saas/api/tokens.py:_look_up",  # an API token names no workspace: its hash finds it
    "saas/api/tokens.py:authenticate",  # records a remembered token's last use (its own row, by id)
    "saas/api/idempotency.py:prune",  # the clock forgets every workspace's old idempotency keys
    "saas/webhooks/delivery.py:dispatch_due_deliveries",  # the clock delivers every workspace's webhooks
    "saas/webhooks/delivery.py:prune_old_events",  # the clock keeps every workspace's delivery log bounded
    "saas/status.py:snapshot",  # operators' counts across every workspace, read-only
}


def test_system_scope_call_sites_are_the_reviewed_ones():
    found = subprocess.run(
        ["grep", "-rn", "--include=*.py", "system_session(", "saas", "tenants", "billing", "publishers"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    sites = set()
    for line in found:
        path, lineno, _ = line.split(":", 2)
        if path == "tenants/scoping.py":
            sites.add(path)
            continue
        source = (PROJECT_ROOT / path).read_text().splitlines()[: int(lineno)]
        function = next(s.split("def ", 1)[1].split("(")[0] for s in reversed(source) if s.lstrip().startswith("def "))
        sites.add(f"{path}:{function}")
    assert sites == SYSTEM_SCOPE_CALL_SITES
