"""Settings → API tokens and `flask create-api-token`: shown once, stored hashed, revocable, audited."""

from __future__ import annotations

import re

import sqlalchemy as sa

from saas.api.models import ApiToken
from tenants import system_session
from tenants.models import AuditEntry, Role
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

TOKEN = re.compile(r"mp_[A-Za-z0-9_-]{43}")


def _tokens(tenant_id: int) -> list[ApiToken]:
    with app_context(), system_session() as session:
        return list(session.scalars(sa.select(ApiToken).where(ApiToken.tenant_id == tenant_id)))


def _audit(tenant_id: int) -> list[str]:
    with app_context(), system_session() as session:
        return list(session.scalars(sa.select(AuditEntry.action).where(AuditEntry.tenant_id == tenant_id)))


def _kind_of(tenant_id: int, action: str) -> str | None:
    with app_context(), system_session() as session:
        return session.scalar(
            sa.select(AuditEntry.kind).where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == action)
        )


def test_owner_makes_a_token_shown_once_and_stored_as_a_hash(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/settings/api-tokens"
    assert b"No tokens yet" in client.get(page).data

    made = client.submit(page, {"name": "Our CMS", "scopes": ["read", "write"]}, page=page)
    assert made.status_code == 201
    secret = TOKEN.search(made.get_data(as_text=True)).group(0)
    assert "shown only this once" in made.get_data(as_text=True)

    [token] = _tokens(tenant.id)
    assert token.scopes == ["read", "write"] and token.user_id == owner.id
    assert secret not in (token.token_hash, token.prefix) and secret.startswith(token.prefix)
    listing = client.get(page).get_data(as_text=True)
    assert secret not in listing and token.prefix in listing  # never shown again
    assert client.get("/api/v1/posts", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert "Created an API token" in _audit(tenant.id)
    assert _kind_of(tenant.id, "Created an API token") == "security"  # filed with sign-in and security


def test_revoking_asks_first_and_stops_the_token(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/settings/api-tokens"
    secret = TOKEN.search(
        client.submit(page, {"name": "Zapier", "scopes": ["read"]}, page=page).get_data(as_text=True)
    ).group(0)
    [token] = _tokens(tenant.id)
    assert 'data-confirm="Revoke “Zapier”?' in client.get(page).get_data(as_text=True)

    revoked = client.submit(f"{page}/{token.id}/revoke", page=page)
    assert revoked.status_code == 302
    assert _tokens(tenant.id)[0].revoked_at is not None
    assert client.get("/api/v1/posts", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "Revoked an API token" in _audit(tenant.id)


def test_a_token_needs_a_name_and_a_known_scope(client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/settings/api-tokens"
    nameless = client.submit(page, {"name": " ", "scopes": ["read"]}, page=page)
    assert nameless.status_code == 422 and b"Give the token a name" in nameless.data
    odd = client.submit(page, {"name": "x", "scopes": ["admin"]}, page=page)
    assert odd.status_code == 422 and b"Unknown scope" in odd.data
    assert _tokens(tenant.id) == []


def test_only_owners_and_admins_manage_tokens(client):
    tenant, editor = make_workspace(Role.EDITOR)
    client.log_in(editor.email, PASSWORD)
    page = f"/w/{tenant.slug}/settings/api-tokens"
    assert client.get(page).status_code == 403
    assert client.submit(page, {"name": "Mine", "scopes": ["write"]}, page="/account").status_code == 403
    assert _tokens(tenant.id) == []


def test_cli_makes_a_token_for_a_member(app):
    tenant, owner = make_workspace()
    staff = make_user()
    add_member(tenant, staff, Role.EDITOR)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-api-token", "--workspace", tenant.slug, "--user", staff.email, "--name", "Deploy bot",
              "--scopes", "read,write"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = TOKEN.search(result.output).group(0)
    [token] = _tokens(tenant.id)
    assert token.user_id == staff.id and token.scopes == ["read", "write"] and token.name == "Deploy bot"
    assert app.test_client().get("/api/v1/posts", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert any("Deploy bot" in action for action in _audit(tenant.id))

    stranger = make_user()
    refused = runner.invoke(
        args=["create-api-token", "--workspace", tenant.slug, "--user", stranger.email, "--name", "x"]
    )
    assert refused.exit_code != 0 and "not one" in refused.output


def test_agency_people_in_a_client_are_sent_to_their_agencys_tokens(client):
    """A token belongs to the people of the workspace that makes it; an agency's reaches its clients from there."""
    from tenants.models import TenantKind
    from tests.factories import make_tenant

    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=make_user())
    client.log_in(agency_owner.email, PASSWORD)
    page = f"/w/{bluebell.slug}/settings/api-tokens"

    html = client.get(page).get_data(as_text=True)
    assert f'href="/w/{agency.slug}/settings/api-tokens"' in html and f"/api/v1/clients/{bluebell.id}/" in html
    refused = client.submit(page, {"name": "Zapier", "scopes": "read"}, page=page)

    assert refused.status_code == 422 and "Make the token in Northwind Social" in refused.get_data(as_text=True)
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0
    made = client.submit(f"/w/{agency.slug}/settings/api-tokens", {"name": "Zapier", "scopes": "read"},
                         page=f"/w/{agency.slug}/settings/api-tokens")  # fmt: skip
    assert made.status_code == 201
