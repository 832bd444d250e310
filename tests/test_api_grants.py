"""A token's grant is remembered by each process, and forgotten as soon as anything it was read from changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from saas import create_app, db
from saas.api import grant_cache, tokens
from saas.api.models import ApiToken
from saas.embedded import free_port
from tenants import agency as agency_service
from tenants import bind_tenant, system_session
from tenants import service as tenant_service
from tenants.models import Membership, Role, Tenant, TenantKind, User
from tests.factories import add_member, app_context, make_api_token, make_tenant, make_user, make_workspace
from tests.test_api import Api, connect, post_body


@contextmanager
def token_lookups(app) -> Iterator[list[str]]:
    """The statements that look a token up by its hash, while the block runs."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_rest) -> None:
        if "token_hash" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = app.extensions["db_system_engine"]
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def test_a_grant_is_looked_up_once_then_remembered(app, client):
    tenant, owner = make_workspace()
    api = Api(client, make_api_token(tenant, owner))
    with token_lookups(app) as lookups:
        for _ in range(5):
            assert api("GET", "/posts").status_code == 200
    assert len(lookups) == 1


def test_a_role_changed_in_the_workspace_applies_at_the_next_request(app, client):
    tenant, owner = make_workspace()
    channel_id = connect(tenant)
    editor = make_user()
    membership = add_member(tenant, editor, Role.EDITOR)
    api = Api(client, make_api_token(tenant, editor))
    assert api("POST", "/posts", post_body(channel_id)).status_code == 201
    with app_context(), db.new_session() as session:
        bind_tenant(session, tenant.id)
        tenant_service.change_role(session, membership.id, Role.VIEWER, session.get(User, owner.id))
        session.commit()
    refused = api("POST", "/posts", post_body(channel_id))
    assert refused.status_code == 403
    assert "viewer" in refused.json["detail"]


def test_revoking_stops_the_token_at_its_next_request(app, client):
    tenant, owner = make_workspace()
    raw = make_api_token(tenant, owner)
    api = Api(client, raw)
    assert api("GET", "/posts").status_code == 200
    with app_context(), db.new_session() as session:
        bind_tenant(session, tenant.id)
        token_id = session.scalar(sa.select(ApiToken.id))
        tokens.revoke(session, token_id)
        session.commit()
    assert api("GET", "/posts").status_code == 401


def test_staff_taken_off_a_client_lose_it_at_the_next_request(app, client):
    owner = make_user()
    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=owner)
    staff = make_user()
    add_member(agency, staff, Role.EDITOR)
    bluebell = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)

    def assign(assigned: bool) -> None:
        with app_context(), db.new_session() as session:
            bind_tenant(session, agency.id)
            client_row = session.get(Tenant, bluebell.id)
            agency_service.assign(session, client_row, staff.id, session.get(User, owner.id), assigned)
            session.commit()

    assign(True)
    api = Api(client, make_api_token(agency, staff))
    assert api("GET", f"/clients/{bluebell.id}/posts").status_code == 200
    assign(False)
    assert api("GET", f"/clients/{bluebell.id}/posts").status_code == 404
    assign(True)
    assert api("GET", f"/clients/{bluebell.id}/posts").status_code == 200


def test_a_client_whose_management_ended_is_out_of_the_agency_tokens_reach(app, client):
    owner = make_user()
    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=owner)
    bluebell = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)
    api = Api(client, make_api_token(agency, owner))
    assert api("GET", f"/clients/{bluebell.id}/posts").status_code == 200
    with app_context():
        agency_service.end_management(bluebell.id)
    assert api("GET", f"/clients/{bluebell.id}/posts").status_code == 404


def test_a_workspace_renamed_is_seen_at_the_next_request(app, client):
    tenant, owner = make_workspace(name="Old Name")
    api = Api(client, make_api_token(tenant, owner))
    assert api("GET", "/workspace").json["name"] == "Old Name"
    with app_context(), system_session() as session:
        session.execute(sa.text("UPDATE tenants SET name = 'New Name' WHERE id = :id"), {"id": tenant.id})
        session.commit()
    assert api("GET", "/workspace").json["name"] == "New Name"


def test_a_change_made_in_another_process_reaches_this_one(app, client):
    """Another app object has its own remembered grants, as another process does; they share Redis."""
    tenant, owner = make_workspace()
    api = Api(client, make_api_token(tenant, owner))
    assert api("GET", "/posts").status_code == 200
    other = create_app({k: app.config[k] for k in ("TESTING", "DATABASE_URL", "SYSTEM_DATABASE_URL", "REDIS_URL")})
    with other.app_context(), db.new_session() as session:
        bind_tenant(session, tenant.id)
        session.execute(sa.delete(Membership).where(Membership.user_id == owner.id))
        session.commit()
    for engine in (other.extensions["db_engine"], other.extensions["db_system_engine"]):
        engine.dispose()
    assert api("GET", "/posts").status_code == 401


def test_a_remembered_token_still_records_its_last_use_once_a_minute(app, client):
    tenant, owner = make_workspace()
    raw = make_api_token(tenant, owner)

    def last_used() -> datetime | None:
        with system_session() as session:
            return session.scalar(sa.select(ApiToken.last_used_at))

    start = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    with app_context():
        tokens.authenticate(raw, now=start)
        assert last_used() == start
        tokens.authenticate(raw, now=start + timedelta(seconds=30))
        assert last_used() == start
        with token_lookups(app) as lookups:
            tokens.authenticate(raw, now=start + timedelta(seconds=61))
        assert lookups == []  # still remembered: recording its use does not forget it
        assert last_used() == start + timedelta(seconds=61)


def test_an_epoch_redis_lost_makes_every_remembered_grant_stale(app, client, redis_conn):
    """A Redis that restarted empty (twice) must not bring back a grant remembered before a revocation."""
    tenant, owner = make_workspace()
    api = Api(client, make_api_token(tenant, owner))
    redis_conn.delete(grant_cache.EPOCH_KEY)
    assert api("GET", "/posts").status_code == 200  # remembered while the epoch had just been lost
    with app_context(), db.new_session() as session:
        bind_tenant(session, tenant.id)
        tokens.revoke(session, session.scalar(sa.select(ApiToken.id)))
        session.commit()
    redis_conn.delete(grant_cache.EPOCH_KEY)  # and the epoch that revocation set is lost too
    assert api("GET", "/posts").status_code == 401


def test_a_change_is_refused_when_the_epoch_cannot_be_moved(app, client):
    """Nobody is told "revoked" while every process still trusts the token: without Redis, no commit."""
    tenant, owner = make_workspace()
    api = Api(client, make_api_token(tenant, owner))
    assert api("GET", "/posts").status_code == 200
    working = app.extensions["redis"]
    app.extensions["redis"] = redis.Redis(port=free_port(), socket_connect_timeout=1)  # nothing listens there
    try:
        with app_context(), db.new_session() as session:
            bind_tenant(session, tenant.id)
            tokens.revoke(session, session.scalar(sa.select(ApiToken.id)))
            with pytest.raises(redis.ConnectionError):
                session.commit()
    finally:
        app.extensions["redis"] = working
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(ApiToken.revoked_at)) is None  # rolled back, not half done
    assert api("GET", "/posts").status_code == 200


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("DELETE FROM memberships WHERE id = 1", True),
        ("update public.users set name = 'x'", True),
        ('UPDATE "public"."users" SET name = 1', True),
        ('INSERT INTO "api_tokens" (name) VALUES (1)', True),
        ("WITH gone AS (DELETE FROM staff_assignments RETURNING 1) SELECT 1", True),
        ("TRUNCATE posts, tenants RESTART IDENTITY CASCADE", True),
        ("/* by hand */ -- really\n  DELETE FROM tenants WHERE id = 1", True),
        ("COPY memberships FROM STDIN", True),
        ("SELECT * FROM users JOIN memberships ON true", False),
        ("INSERT INTO tenants_archive VALUES (1)", False),
        ("-- UPDATE users\nSELECT 1", False),
    ],
)
def test_writes_to_the_tables_a_grant_reads_are_told_apart(statement, writes):
    assert grant_cache.writes_grant_tables(statement, None) is writes


@pytest.mark.parametrize(
    "statement",
    [
        sa.update(so.aliased(User)).values(name="x"),
        sa.select(sa.literal(1)).add_cte(sa.delete(Membership).returning(Membership.id).cte("gone")),
        sa.delete(Membership.__table__.alias("m")),
    ],
    ids=["aliased update", "a select carrying a writing CTE", "aliased table"],
)
def test_writes_built_by_sqlalchemy_in_any_shape_are_seen(statement):
    sql = str(statement.compile(dialect=postgresql_psycopg.dialect()))
    assert grant_cache.writes_grant_tables(sql, None)
