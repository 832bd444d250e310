"""The audit log viewer: what changed, by whom, in readable words; filters, pages, CSV; owners and admins only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas import audit
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
    assert who("from=2026-01-02") == ["Ann", "Ben"]
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

    first = owner_client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)
    second = owner_client.get(f"/w/{tenant.slug}/audit?page=2").get_data(as_text=True)

    assert "Change 059" in first and "Change 010" in first and "Change 009" not in first
    assert "Older →" in first and "← Newer" not in first
    assert "Change 009" in second and "Change 000" in second and "Change 010" not in second
    assert "Older →" not in second
    assert len(csv_rows(owner_client.get(f"/w/{tenant.slug}/audit.csv"))) == 60  # the export is not paged


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
    assert "No changes recorded yet" in owner_client.get(f"/w/{tenant.slug}/audit").get_data(as_text=True)
    text = owner_client.get(f"/w/{tenant.slug}/audit.csv").get_data(as_text=True)
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


def test_a_second_source_merges_into_the_listing_by_time(app, owner_client, monkeypatch):
    """How sign-in events (kept per user, elsewhere) join the log: one more function in audit.SOURCES."""
    tenant = owner_client.tenant
    add_entries(tenant.id, {"action": "Older change", "created_at": datetime(2026, 5, 1, 9, tzinfo=UTC)})
    add_entries(tenant.id, {"action": "Newer change", "created_at": datetime(2026, 5, 1, 11, tzinfo=UTC)})
    signed_in = audit.AuditRow(
        at=datetime(2026, 5, 1, 10, tzinfo=UTC),
        who="Ann",
        agency=None,
        kind="security",
        action="Logged in",
        detail=None,
        source="account",
        ref=1,
    )

    def account_rows(_session, where, _limit):
        return [signed_in] if where.kind in (None, "security") else []

    monkeypatch.setattr(audit, "SOURCES", [audit.workspace_rows, account_rows])
    rows = csv_rows(owner_client.get(f"/w/{tenant.slug}/audit.csv"))
    assert [r["action"] for r in rows] == ["Newer change", "Logged in", "Older change"]
