"""The team page: invitations by email, accepting them, roles, removal, the last owner."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas import db
from tenants import service as tenant_service
from tenants import system_session
from tenants.models import Invitation, Membership, Role, User
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

JOINER_PASSWORD = "copper-kettle-whistles"


def team_page(tenant):
    return f"/w/{tenant.slug}/team"


def invite(client, tenant, email, role="editor"):
    return client.submit(f"{team_page(tenant)}/invitations", {"email": email, "role": role}, page=team_page(tenant))


def memberships(tenant):
    with app_context(), system_session() as session:
        rows = session.execute(
            sa.select(User.email, Membership.role)
            .join(Membership.user)
            .where(Membership.tenant_id == tenant.id)
            .order_by(User.email)
        ).all()
    return {email: role for email, role in rows}


def membership_id(tenant, user):
    with app_context(), system_session() as session:
        return session.scalar(
            sa.select(Membership.id).where(Membership.tenant_id == tenant.id, Membership.user_id == user.id)
        )


@pytest.fixture
def owned(client):
    tenant, owner = make_workspace(name="Bluebell Bakery")
    client.log_in(owner.email, PASSWORD)
    return tenant, owner


def test_invitation_email_and_acceptance_creates_the_account(owned, client, make_client, outbox):
    tenant, owner = owned
    response = invite(client, tenant, "New.Person@Example.com", "reviewer")
    assert response.status_code == 302
    assert b"new.person@example.com" in client.get(team_page(tenant)).data
    mail = outbox.last_to("new.person@example.com")
    assert mail["Subject"] == f"{owner.name} invited you to Bluebell Bakery on Multipost"
    assert "as Reviewer" in mail.get_content()
    assert " UTC" in mail.get_content()  # the expiry names its time zone

    joiner = make_client()
    link = outbox.link_in_last("new.person@example.com")
    page = joiner.get(link)
    assert b"Join Bluebell Bakery" in page.data
    response = joiner.submit(link, {"name": "New Person", "password": JOINER_PASSWORD}, page=link)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/w/{tenant.slug}/calendar"
    assert joiner.get(f"/w/{tenant.slug}/calendar").status_code == 200
    assert memberships(tenant)["new.person@example.com"] is Role.REVIEWER
    # The link is single-use.
    again = make_client().get(link)
    assert again.status_code == 400 and b"already been used" in again.data


def test_existing_user_logs_in_then_accepts(owned, client, make_client, outbox):
    tenant, _ = owned
    _, existing = make_workspace(name="Elsewhere")
    invite(client, tenant, existing.email, "viewer")
    link = outbox.link_in_last(existing.email)
    browser = make_client()
    page = browser.get(link)
    assert b"Log in to accept" in page.data
    response = browser.submit(f"/login?next={link}", {"email": existing.email, "password": PASSWORD})
    assert response.headers["Location"] == link
    response = browser.submit(link, page=link)
    assert response.status_code == 302
    assert memberships(tenant)[existing.email] is Role.VIEWER
    switcher = browser.get("/account/workspaces").data
    assert b"Bluebell Bakery" in switcher and b"Elsewhere" in switcher


def test_invitation_cannot_be_accepted_by_another_account(owned, client, make_client, outbox):
    tenant, _ = owned
    invite(client, tenant, "intended@example.com")
    link = outbox.link_in_last("intended@example.com")
    _, other = make_workspace()
    browser = make_client()
    browser.log_in(other.email, PASSWORD)
    assert browser.get(link).status_code == 403
    response = browser.submit(link, page="/account")
    assert response.status_code == 403
    assert other.email not in memberships(tenant)


def test_expired_invitation_is_refused(owned, client, make_client, outbox):
    tenant, _ = owned
    invite(client, tenant, "late@example.com")
    with app_context(), system_session() as session:
        session.execute(sa.update(Invitation).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        session.commit()
    browser = make_client()
    link = outbox.link_in_last("late@example.com")
    response = browser.submit(link, {"name": "Late", "password": JOINER_PASSWORD}, page="/login")
    assert response.status_code == 400
    assert b"expired" in response.data
    assert "late@example.com" not in memberships(tenant)


def test_withdrawn_invitation_stops_working(owned, client, make_client, outbox):
    tenant, _ = owned
    invite(client, tenant, "maybe@example.com")
    with app_context(), system_session() as session:
        invitation_id = session.scalar(sa.select(Invitation.id))
    response = client.submit(f"{team_page(tenant)}/invitations/{invitation_id}/revoke", page=team_page(tenant))
    assert response.status_code == 302
    link = outbox.link_in_last("maybe@example.com")
    assert b"withdrawn" in make_client().get(link).data
    assert b"No open invitations" in client.get(team_page(tenant)).data


def test_inviting_again_replaces_the_old_link(owned, client, make_client, outbox):
    tenant, _ = owned
    invite(client, tenant, "twice@example.com")
    first = outbox.link_in_last("twice@example.com")
    invite(client, tenant, "twice@example.com", "admin")
    second = outbox.link_in_last("twice@example.com")
    assert make_client().get(first).status_code == 400
    browser = make_client()
    browser.submit(second, {"name": "Twice", "password": JOINER_PASSWORD}, page=second)
    assert memberships(tenant)["twice@example.com"] is Role.ADMIN


@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("", "editor", b"Enter your email address."),
        ("not an email", "editor", b"Enter an email address like"),
        ("x" * 250 + "@example.com", "editor", b"Use at most 254 characters."),
        ("someone@example.com", "superuser", b"Not a valid choice"),
    ],
)
def test_invite_bad_input(owned, client, outbox, email, role, message):
    tenant, _ = owned
    response = invite(client, tenant, email, role)
    assert response.status_code == 422
    assert message in response.data
    assert outbox.messages() == []


def test_invitation_for_an_existing_member_is_refused(owned, client, outbox):
    tenant, owner = owned
    response = invite(client, tenant, owner.email.upper())
    assert response.status_code == 422
    assert b"is already a member of this workspace" in response.data
    assert outbox.messages() == []


def test_admin_cannot_invite_an_owner(client, outbox):
    tenant, admin = make_workspace(role=Role.ADMIN)
    client.log_in(admin.email, PASSWORD)
    response = invite(client, tenant, "boss@example.com", "owner")
    assert response.status_code == 422
    assert b"Only an owner can invite another owner." in response.data


@pytest.mark.parametrize("role", [Role.EDITOR, Role.REVIEWER, Role.VIEWER])
def test_members_without_team_rights_see_the_team_but_cannot_change_it(client, outbox, role):
    tenant, member = make_workspace(role=role)
    client.log_in(member.email, PASSWORD)
    page = client.get(team_page(tenant))
    assert page.status_code == 200
    assert b"Invite someone" not in page.data
    assert invite(client, tenant, "friend@example.com").status_code == 403
    assert outbox.messages() == []


def test_change_role_and_remove_member(owned, client):
    tenant, _ = owned
    staff = make_user()
    add_member(tenant, staff, Role.EDITOR)
    staff_id = membership_id(tenant, staff)
    response = client.submit(f"{team_page(tenant)}/members/{staff_id}/role", {"role": "admin"}, page=team_page(tenant))
    assert response.status_code == 302
    assert memberships(tenant)[staff.email] is Role.ADMIN
    confirm = client.get(f"{team_page(tenant)}/members/{staff_id}/remove")
    assert confirm.status_code == 200 and b"will lose access" in confirm.data
    assert staff.email in memberships(tenant)  # asking is not doing
    client.submit(f"{team_page(tenant)}/members/{staff_id}/remove", page=team_page(tenant))
    assert staff.email not in memberships(tenant)


def test_removed_member_loses_access_at_once(owned, client, make_client):
    tenant, _ = owned
    staff = make_user()
    add_member(tenant, staff, Role.EDITOR)
    browser = make_client()
    browser.log_in(staff.email, PASSWORD)
    assert browser.get(f"/w/{tenant.slug}/calendar").status_code == 200
    client.submit(f"{team_page(tenant)}/members/{membership_id(tenant, staff)}/remove", page=team_page(tenant))
    assert browser.get(f"/w/{tenant.slug}/calendar").status_code == 404


def test_last_owner_can_be_neither_removed_nor_demoted(owned, client):
    tenant, owner = owned
    own_id = membership_id(tenant, owner)
    response = client.submit(f"{team_page(tenant)}/members/{own_id}/remove", page=team_page(tenant))
    assert b"The last owner cannot be removed" in client.get(response.headers["Location"]).data
    response = client.submit(f"{team_page(tenant)}/members/{own_id}/role", {"role": "editor"}, page=team_page(tenant))
    assert b"needs at least one owner" in client.get(response.headers["Location"]).data
    assert memberships(tenant)[owner.email] is Role.OWNER


def test_admin_cannot_remove_or_demote_an_owner(client):
    tenant, admin = make_workspace(role=Role.ADMIN)
    client.log_in(admin.email, PASSWORD)
    owner_email, owner_role = next((e, r) for e, r in memberships(tenant).items() if r is Role.OWNER)
    with app_context(), system_session() as session:
        owner_id = session.scalar(
            sa.select(Membership.id).where(Membership.tenant_id == tenant.id, Membership.role == Role.OWNER)
        )
    client.submit(f"{team_page(tenant)}/members/{owner_id}/remove", page=team_page(tenant))
    client.submit(f"{team_page(tenant)}/members/{owner_id}/role", {"role": "viewer"}, page=team_page(tenant))
    assert memberships(tenant)[owner_email] is Role.OWNER


def test_two_owners_removing_each_other_at_once_leave_one_owner(app):
    """The owners' rows are locked, so concurrent removals cannot both succeed."""
    tenant, first = make_workspace()
    second = make_user()
    add_member(tenant, second, Role.OWNER)
    first_id, second_id = membership_id(tenant, first), membership_id(tenant, second)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def remove(actor, target_id):
        with app.app_context(), db.new_session() as session:
            tenant_service.bind_tenant(session, tenant.id)
            actor_row = session.get(User, actor.id)
            barrier.wait()
            try:
                tenant_service.remove_member(session, target_id, actor_row)
                session.commit()
                outcomes.append("removed")
            except tenant_service.MembershipError:
                session.rollback()
                outcomes.append("refused")

    threads = [
        threading.Thread(target=remove, args=(first, second_id)),
        threading.Thread(target=remove, args=(second, first_id)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "removed"]
    assert list(memberships(tenant).values()) == [Role.OWNER]


def test_a_member_can_leave_but_not_remove_others(client):
    tenant, member = make_workspace(role=Role.EDITOR)
    client.log_in(member.email, PASSWORD)
    owner_id = next(
        membership_id(tenant, u) for u in [_user(e) for e, r in memberships(tenant).items() if r is Role.OWNER]
    )
    assert client.get(f"{team_page(tenant)}/members/{owner_id}/remove").status_code == 403
    leave = f"{team_page(tenant)}/members/{membership_id(tenant, member)}/remove"
    assert b"Leave " in client.get(leave).data
    response = client.submit(leave, page=team_page(tenant))
    assert response.status_code == 302
    assert member.email not in memberships(tenant)
    assert client.get(f"/w/{tenant.slug}/calendar").status_code == 404


def _user(email):
    with app_context(), db.new_session() as session:
        return session.scalars(sa.select(User).where(User.email == email)).one()


def test_workspace_settings_need_an_admin(client):
    tenant, editor = make_workspace(role=Role.EDITOR)
    client.log_in(editor.email, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/settings")
    assert b"Only owners and admins can change these settings." in page.data
    response = client.submit(
        f"/w/{tenant.slug}/settings", {"name": "Renamed", "timezone": "UTC"}, page=f"/w/{tenant.slug}/settings"
    )
    assert response.status_code == 403


def test_workspace_settings_bad_input(owned, client):
    tenant, _ = owned
    settings = f"/w/{tenant.slug}/settings"
    response = client.submit(settings, {"name": "", "timezone": "Nowhere/Land"}, page=settings)
    assert response.status_code == 422
    assert b"Enter a name for the workspace." in response.data
    assert b"Choose a time zone from the list" in response.data
    assert (
        client.submit(settings, {"name": "Bluebell & Co", "timezone": "Europe/Paris"}, page=settings).status_code == 302
    )
    assert b"Europe/Paris" in client.get(settings).data


def test_invitation_sent_and_accepted_are_in_the_audit_log_with_names(owned, client, make_client, outbox):
    tenant, owner = owned
    invite(client, tenant, "joiner@example.com", "editor")
    joiner = make_client()
    link = outbox.link_in_last("joiner@example.com")
    joiner.submit(link, {"name": "Jo Iner", "password": JOINER_PASSWORD}, page=link)

    page = client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)

    assert "Invited someone: Invited joiner@example.com as Editor" in page
    assert "Joined the workspace: Jo Iner (joiner@example.com) accepted an invitation" in page
