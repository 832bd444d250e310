"""Agency staff in client workspaces: only where assigned, visibly acting for the client, audited, and out at once
when the arrangement ends."""

from __future__ import annotations

import sqlalchemy as sa

from saas.approvals.models import PostComment
from tenants import system_session
from tenants.models import ClientMode, Membership, Role, Tenant, TenantKind, User
from tests.factories import PASSWORD, add_member, app_context, make_tenant, make_user, make_workspace
from tests.test_tenant_routes import _form_data, _requests, _snapshot, _victim


def agency_with_staff():
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    staff = make_user("sam@northwind.example", name="Sam Staff")
    add_member(agency, staff, Role.EDITOR)
    return agency, agency_owner, staff


def email_of_owner(tenant: Tenant) -> str:
    with app_context(), system_session() as session:
        return session.scalar(
            sa.select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant.id, Membership.role == Role.OWNER)
        )


def assign(client, agency_owner, agency, victim, staff, ticked: bool = True):
    """The agency's owner ticks (or unticks) `staff` for the client `victim` in the console."""
    client.log_in(agency_owner.email, PASSWORD)
    page = f"/w/{agency.slug}/clients"
    response = client.submit(
        f"/w/{agency.slug}/clients/{victim.id}/staff", {"user_id": [str(staff.id)] if ticked else []}, page=page
    )
    assert response.status_code == 302


def test_unassigned_staff_get_404_on_every_route_of_the_client(app, client):
    agency, agency_owner, staff = agency_with_staff()
    victim, ids = _victim(kind=TenantKind.CLIENT, managed_by=agency)
    before = _snapshot(victim.id)
    client.log_in(staff.email, PASSWORD)

    tried = 0
    for rule, method, path in _requests(app, victim.slug, ids):
        data = {"csrf_token": client.csrf_token("/account"), **_form_data(rule.rule)} if method != "GET" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == 404, f"{method} {path} answered {response.status_code}"
        assert b"Victim Co" not in response.data
        tried += 1

    assert tried > 20
    assert _snapshot(victim.id) == before


def test_assigned_staff_act_in_the_client_and_the_audit_log_says_for_whom(app, client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    victim, ids = _victim(kind=TenantKind.CLIENT, managed_by=agency)
    assign(make_client(), agency_owner, agency, victim, staff)
    client.log_in(staff.email, PASSWORD)

    calendar = client.get(f"/w/{victim.slug}/calendar")
    assert calendar.status_code == 200
    assert "Northwind Social for Victim Co" in calendar.get_data(as_text=True)
    page = f"/w/{victim.slug}/posts/{ids['post_id']}"
    response = client.submit(
        f"/w/{victim.slug}/approvals/posts/{ids['post_id']}/comments", {"body": "Drafted the launch copy"}, page=page
    )
    assert response.status_code == 302
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(PostComment.author_name)) == "Sam Staff"

    client_owner = make_client()
    owner_email = email_of_owner(victim)
    client_owner.log_in(owner_email, PASSWORD)
    log = client_owner.get(f"/w/{victim.slug}/audit").get_data(as_text=True)
    assert "Sam Staff (Northwind Social) for Victim Co" in log
    assert "Commented on a post" in log
    # Staff see the client as editors: the client's audit log is for its owner and admins.
    assert client.get(f"/w/{victim.slug}/audit").status_code == 403


def test_agency_owner_enters_every_client_but_not_another_agencys(client):
    agency, agency_owner, _staff = agency_with_staff()
    mine = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency)
    other_agency, _ = make_workspace(name="Other Agency", kind=TenantKind.AGENCY)
    theirs = make_tenant("Harbor Dental", kind=TenantKind.CLIENT, managed_by=other_agency)
    client.log_in(agency_owner.email, PASSWORD)
    assert client.get(f"/w/{mine.slug}/calendar").status_code == 200
    assert client.get(f"/w/{theirs.slug}/calendar").status_code == 404


def test_ending_the_arrangement_removes_access_at_once_and_keeps_client_data(app, client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    victim, ids = _victim(kind=TenantKind.CLIENT, managed_by=agency)
    assign(make_client(), agency_owner, agency, victim, staff)
    client.log_in(staff.email, PASSWORD)
    assert client.get(f"/w/{victim.slug}/calendar").status_code == 200
    before = _snapshot(victim.id)

    as_agency = make_client()
    as_agency.log_in(agency_owner.email, PASSWORD)
    response = as_agency.submit(f"/w/{agency.slug}/clients/{victim.id}/end", page=f"/w/{agency.slug}/clients")
    assert "You no longer manage Victim Co" in as_agency.get(response.location).get_data(as_text=True)

    assert client.get(f"/w/{victim.slug}/calendar").status_code == 404
    assert client.get(f"/w/{victim.slug}/posts/{ids['post_id']}").status_code == 404
    assert as_agency.get(f"/w/{victim.slug}/calendar").status_code == 404
    after = _snapshot(victim.id)
    assert after == before
    with app_context(), system_session() as session:
        tenant = session.get(Tenant, victim.id)
        assert tenant.kind is TenantKind.DIRECT and tenant.managed_by_id is None


def test_client_owner_can_end_the_arrangement(client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    owner = make_user()
    victim = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=owner)
    client.log_in(owner.email, PASSWORD)
    settings = client.get(f"/w/{victim.slug}/settings").get_data(as_text=True)
    assert "Northwind Social manages this workspace" in settings

    client.submit(f"/w/{victim.slug}/settings/end-agency", page=f"/w/{victim.slug}/settings")

    as_agency = make_client()
    as_agency.log_in(agency_owner.email, PASSWORD)
    assert as_agency.get(f"/w/{victim.slug}/calendar").status_code == 404
    assert client.get(f"/w/{victim.slug}/calendar").status_code == 200
    assert "Ended the agency" in client.get(f"/w/{victim.slug}/audit").get_data(as_text=True)


def test_agency_creates_a_client_and_the_console_shows_only_assigned_clients(client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    client.log_in(agency_owner.email, PASSWORD)
    page = f"/w/{agency.slug}/clients"
    assert "No client workspaces yet" in client.get(page).get_data(as_text=True)
    for name in ("Bluebell Bakery", "Harbor Dental"):
        client.submit(f"/w/{agency.slug}/clients/new", {"name": name, "timezone": "Europe/London", "mode": "managed"},
                      page=page)  # fmt: skip
    refused = client.submit(f"/w/{agency.slug}/clients/new", {"name": "  ", "timezone": "UTC"}, page=page)
    assert "Give the client workspace a name" in client.get(refused.location).get_data(as_text=True)
    with app_context(), system_session() as session:
        clients = {t.name: t for t in session.scalars(sa.select(Tenant).where(Tenant.managed_by_id == agency.id))}
    assert set(clients) == {"Bluebell Bakery", "Harbor Dental"}
    assert clients["Bluebell Bakery"].client_mode is ClientMode.MANAGED
    assert clients["Bluebell Bakery"].timezone == "Europe/London"
    client.submit(f"/w/{agency.slug}/clients/{clients['Bluebell Bakery'].id}/staff", {"user_id": str(staff.id)},
                  page=page)  # fmt: skip

    as_staff = make_client()
    as_staff.log_in(staff.email, PASSWORD)
    console = as_staff.get(page).get_data(as_text=True)
    assert "Bluebell Bakery" in console and "Harbor Dental" not in console
    assert as_staff.get(f"/w/{clients['Harbor Dental'].slug}/calendar").status_code == 404
    assert as_staff.post(f"/w/{agency.slug}/clients/new").status_code in (400, 403)


def compose(client, slug: str, channel_id: int, text: str):
    return client.submit(
        f"/w/{slug}/posts/new",
        {"text": text, "channels": str(channel_id), "publish_now": "y"},
        page=f"/w/{slug}/posts/new",
    )


def test_managed_client_people_cannot_publish_directly_but_agency_staff_can(app, client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    victim, ids = _victim(kind=TenantKind.CLIENT, managed_by=agency)
    owner_email = email_of_owner(victim)
    client.log_in(owner_email, PASSWORD)
    assert compose(client, victim.slug, ids["channel_id"], "Client posting itself").status_code == 403
    assert "Approval" in client.get(f"/w/{victim.slug}/posts/{ids['post_id']}").get_data(as_text=True)

    assign(make_client(), agency_owner, agency, victim, staff)
    as_staff = make_client()
    as_staff.log_in(staff.email, PASSWORD)
    assert compose(as_staff, victim.slug, ids["channel_id"], "Staff posting for the client").status_code == 302

    with app_context(), system_session() as session:
        session.get(Tenant, victim.id).client_mode = ClientMode.SELF_SERVE
        session.commit()
    assert compose(client, victim.slug, ids["channel_id"], "Self-serve now").status_code == 302


def test_a_direct_workspace_owner_accepts_an_agencys_invitation_and_keeps_everything(client, make_client, outbox):
    agency, agency_owner, _staff = agency_with_staff()
    shop, ids = _victim()  # a direct workspace with a post, a channel, a team
    shop_owner_email = email_of_owner(shop)
    before = _snapshot(shop.id)
    client.log_in(agency_owner.email, PASSWORD)
    assert client.get(f"/w/{shop.slug}/calendar").status_code == 404
    page = f"/w/{agency.slug}/clients"
    sent = client.submit(f"/w/{agency.slug}/clients/invite", {"email": shop_owner_email.upper()}, page=page)
    assert f"Invitation sent to {shop_owner_email}" in client.get(sent.location).get_data(as_text=True)
    link = outbox.link_in_last(shop_owner_email)
    assert "Northwind Social would like to manage" in outbox.last_to(shop_owner_email)["Subject"]

    stranger = make_client()
    assert stranger.get(link).status_code == 302  # log in first
    stranger.log_in(make_user().email, PASSWORD)
    assert "You do not own a self-serve workspace" in stranger.get(link).get_data(as_text=True)
    assert stranger.submit(link, {"workspace_id": str(shop.id)}, page=link).status_code == 422

    owner = make_client()
    owner.log_in(shop_owner_email, PASSWORD)
    assert "Victim Co" in owner.get(link).get_data(as_text=True)
    accepted = owner.submit(link, {"workspace_id": str(shop.id)}, page=link)
    assert accepted.status_code == 302
    assert "Northwind Social now manages Victim Co" in owner.get(accepted.location).get_data(as_text=True)

    assert client.get(f"/w/{shop.slug}/calendar").status_code == 200
    assert _snapshot(shop.id) == before
    with app_context(), system_session() as session:
        tenant = session.get(Tenant, shop.id)
        assert (tenant.kind, tenant.managed_by_id, tenant.client_mode) == (
            TenantKind.CLIENT,
            agency.id,
            ClientMode.SELF_SERVE,
        )
    assert owner.get(link).status_code == 404  # works once
    assert owner.get(link[:-2] + "xx").status_code == 404


def test_internal_comments_in_a_client_are_for_the_agency_only(client, make_client, outbox):
    agency, agency_owner, staff = agency_with_staff()
    victim, ids = _victim(kind=TenantKind.CLIENT, managed_by=agency)
    assign(make_client(), agency_owner, agency, victim, staff)
    client.log_in(staff.email, PASSWORD)
    page = f"/w/{victim.slug}/posts/{ids['post_id']}"
    owner = email_of_owner(victim)
    handle = owner.split("@")[0]
    comments = f"/w/{victim.slug}/approvals/posts/{ids['post_id']}/comments"
    client.submit(comments, {"body": f"@{handle} internal price check", "internal": "y"}, page=page)
    client.submit(comments, {"body": f"@{handle} shared question"}, page=page)
    assert "internal price check" in client.get(page).get_data(as_text=True)

    as_owner = make_client()
    as_owner.log_in(owner, PASSWORD)
    seen = as_owner.get(page).get_data(as_text=True)
    assert "shared question" in seen and "internal price check" not in seen
    told = [m.get_content() for m in outbox.to(owner) if "mentioned you" in m["Subject"]]
    assert len(told) == 1 and "shared question" in told[0]
    # The client's own team cannot mark a comment internal: it is shared with the agency anyway.
    as_owner.submit(comments, {"body": "Client note", "internal": "y"}, page=page)
    assert "Client note" in client.get(page).get_data(as_text=True)


def test_workspace_list_shows_the_clients_a_staff_member_works_in(client, make_client):
    agency, agency_owner, staff = agency_with_staff()
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency)
    make_tenant("Harbor Dental", kind=TenantKind.CLIENT, managed_by=agency)
    assign(make_client(), agency_owner, agency, bluebell, staff)
    client.log_in(staff.email, PASSWORD)
    page = client.get("/account/workspaces").get_data(as_text=True)
    assert "Bluebell Bakery" in page and "as Northwind Social" in page
    assert "Harbor Dental" not in page
