"""The audit log viewer: what changed, by whom, in readable words; filters, pages, CSV; owners and admins only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tenants import tenant_session
from tenants.models import AuditEntry, Membership, Role, User
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace


@pytest.fixture
def owner_client(client):
    tenant, owner = make_workspace(name="Audit Bakery")
    client.log_in(owner.email, PASSWORD)
    client.tenant, client.owner = tenant, owner
    return client


def add_entries(tenant_id: int, *entries: dict) -> None:
    with app_context(), tenant_session(tenant_id) as session:
        for values in entries:
            session.add(AuditEntry(**{"actor_name": "Someone", "action": "Did a thing", "path": "/", **values}))
        session.commit()


def set_timezone(user: User, zone: str) -> None:
    with app_context(), tenant_session(0) as session:
        session.execute(sa.update(User).where(User.id == user.id).values(timezone=zone))
        session.commit()


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_a_role_change_and_an_invitation_read_with_names(owner_client):
    tenant = owner_client.tenant
    member = make_user(name="Ann Lee")
    add_member(tenant, member, Role.EDITOR)
    with app_context(), tenant_session(tenant.id) as session:
        membership_id = session.scalar(sa.select(Membership.id).where(Membership.user_id == member.id))
    team = f"/w/{tenant.slug}/team"

    owner_client.submit(f"{team}/members/{membership_id}/role", {"role": "admin"}, page=team)
    owner_client.submit(f"{team}/invitations", {"email": "new@example.com", "role": "viewer"}, page=team)

    page = owner_client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)
    assert "Changed a member&#39;s role: Ann Lee: Editor → Admin" in page
    assert "Invited someone: Invited new@example.com as Viewer" in page
    rows = csv_rows(owner_client.get(f"/w/{tenant.slug}/audit.csv?kind=members"))
    assert [(r["who"], r["kind"], r["detail"]) for r in rows] == [
        (owner_client.owner.name, "Members and roles", "Ann Lee: Editor → Admin")
    ]


def test_filters_by_who_kind_and_dates_in_the_readers_zone(owner_client):
    tenant = owner_client.tenant
    set_timezone(owner_client.owner, "Pacific/Auckland")  # UTC+13 in January
    # 10:30 UTC on 1 Jan is 23:30 on 1 Jan in Auckland; 11:30 UTC is already 2 Jan there.
    add_entries(
        tenant.id,
        {"actor_name": "Ann", "kind": "channels", "created_at": datetime(2026, 1, 1, 10, 30, tzinfo=UTC)},
        {"actor_name": "Ben", "kind": "members", "created_at": datetime(2026, 1, 1, 11, 30, tzinfo=UTC)},
        {"actor_name": "Ann", "kind": "members", "created_at": datetime(2026, 1, 3, 9, 0, tzinfo=UTC)},
    )
    base = f"/w/{tenant.slug}/audit.csv"

    def who(query: str) -> list[str]:
        return [r["who"] for r in csv_rows(owner_client.get(f"{base}?{query}"))]

    assert who("from=2026-01-01&to=2026-01-01") == ["Ann"]
    assert who("from=2026-01-02&to=2026-01-02") == ["Ben"]
    assert who("from=2026-01-02&to=2026-06-30") == ["Ann", "Ben"]
    assert who("who=Ann") == ["Ann", "Ann"]
    assert who("kind=members&who=Ann") == ["Ann"]
    [ann] = csv_rows(owner_client.get(f"{base}?from=2026-01-01&to=2026-01-01"))
    assert (ann["time (UTC)"], ann["local time (Pacific/Auckland)"]) == (
        "2026-01-01T10:30:00+00:00",
        "2026-01-01T23:30:00+13:00",
    )
    page = owner_client.get(f"/w/{tenant.slug}/audit?from=2026-01-01&to=2026-01-01").get_data(as_text=True)
    assert "1 Jan 2026, 23:30 NZDT (Pacific/Auckland)" in page
    assert "Times are in your time zone, Pacific/Auckland" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=yesterday", "Enter a date as YYYY-MM-DD."),
        ("from=2026-02-01&to=2026-01-01", "The end date is before the start date."),
        ("kind=everything", "Choose one of the listed kinds."),
    ],
)
def test_bad_filters_are_explained(owner_client, query, message):
    response = owner_client.get(f"/w/{owner_client.tenant.slug}/audit?{query}")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_pages_of_fifty_newest_first(owner_client):
    tenant = owner_client.tenant
    start = datetime(2026, 3, 1, tzinfo=UTC)
    add_entries(
        tenant.id, *({"action": f"Change {n:03}", "created_at": start + timedelta(minutes=n)} for n in range(60))
    )

    # The owner's own log-in is in the log too: changes of one kind only, to count pages of these sixty.
    first = owner_client.get(f"/w/{tenant.slug}/audit?kind=other").get_data(as_text=True)
    second = owner_client.get(f"/w/{tenant.slug}/audit?kind=other&page=2").get_data(as_text=True)

    assert "Change 059" in first and "Change 010" in first and "Change 009" not in first
    assert "Older →" in first and "← Newer" not in first
    assert "Change 009" in second and "Change 000" in second and "Change 010" not in second
    assert "Older →" not in second
    assert len(csv_rows(owner_client.get(f"/w/{tenant.slug}/audit.csv?kind=other"))) == 60  # the export is not paged


def test_the_csv_never_hands_a_spreadsheet_a_formula(owner_client):
    tenant = owner_client.tenant
    add_entries(
        tenant.id,
        {"actor_name": '=HYPERLINK("http://evil.example","click")', "action": "+1+1", "detail": "@SUM(A1)"},
        {"actor_name": "-2+3", "action": "Plain", "detail": "\tTabbed"},
    )
    response = owner_client.get(f"/w/{tenant.slug}/audit.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    for row in csv_rows(response):
        for column in ("who", "action", "detail"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t")), row
    assert any(r["who"] == '\'=HYPERLINK("http://evil.example","click")' for r in csv_rows(response))


def test_an_empty_log_says_so_and_exports_just_the_header(owner_client):
    tenant = owner_client.tenant
    page = owner_client.get(f"/w/{tenant.slug}/audit?kind=posts").get_data(as_text=True)
    assert "Nothing matches these filters" in page
    text = owner_client.get(f"/w/{tenant.slug}/audit.csv?kind=posts").get_data(as_text=True)
    assert text.splitlines() == ["time (UTC),local time (UTC),who,for agency,kind,action,detail"]


@pytest.mark.parametrize("role", [Role.EDITOR, Role.REVIEWER, Role.VIEWER])
def test_only_owners_and_admins_read_the_log(client, role):
    tenant, user = make_workspace(role)
    client.log_in(user.email, PASSWORD)
    assert client.get(f"/w/{tenant.slug}/audit").status_code == 403
    assert client.get(f"/w/{tenant.slug}/audit.csv").status_code == 403


def test_admins_read_the_log(client):
    tenant, admin = make_workspace(Role.ADMIN)
    add_entries(tenant.id, {"actor_name": "Owner", "action": "Changed the workspace settings"})
    client.log_in(admin.email, PASSWORD)
    assert "Changed the workspace settings" in client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)


def test_members_sign_ins_and_security_changes_are_in_the_log_by_time(app, client, make_client):
    """Sign-in events are kept per person; a workspace's log shows its members' (not other people's)."""
    tenant, owner = make_workspace(name="Audit Bakery")
    member = make_user(name="Mia Member")
    add_member(tenant, member, Role.EDITOR)
    stranger = make_user(name="Sam Stranger")
    make_client().submit("/login", {"email": member.email, "password": "not her password"})
    make_client().log_in(stranger.email, PASSWORD)
    make_client().log_in(member.email, PASSWORD)
    add_entries(tenant.id, {"action": "Older change", "created_at": datetime(2026, 5, 1, 9, tzinfo=UTC)})
    client.log_in(owner.email, PASSWORD)

    rows = csv_rows(client.get(f"/w/{tenant.slug}/audit.csv"))

    security = [(r["who"], r["action"]) for r in rows if r["kind"] == "Sign-in and security"]
    assert security == [(owner.name, "Logged in"), ("Mia Member", "Logged in"), ("Mia Member", "Failed log-in")]
    assert rows[-1]["action"] == "Older change"  # merged by time, newest first
    assert "Sam Stranger" not in {r["who"] for r in rows}
    only_mia = csv_rows(client.get(f"/w/{tenant.slug}/audit.csv?who=Mia+Member&kind=security"))
    assert [r["action"] for r in only_mia] == ["Logged in", "Failed log-in"]
    assert "Mia Member" in client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)
