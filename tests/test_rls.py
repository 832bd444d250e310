"""Row-level security, the second wall: the database itself keeps each tenant's rows to that tenant.

Every test here talks to PostgreSQL as the app's own role (DATABASE_URL), never as the
owner or a superuser, which bypass policies: the owner's engine only seeds and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas import db, rls, seed
from saas.channels.models import Channel
from saas.db import Base
from saas.posts import service as post_service
from tenants import bind_tenant, system_session, tenant_session
from tenants.models import Membership, Role, User
from tests.conftest import owner_engine
from tests.factories import PASSWORD, app_context, make_user, make_workspace

# Tables every demo workspace fills, so "zero rows" below is not zero because nothing was there.
SEEDED = {"memberships", "channels", "posts", "post_targets", "staff_assignments", "approval_policies"}
IN_A_WEEK = (datetime.now(UTC) + timedelta(days=7)).replace(tzinfo=None, microsecond=0)


def tenant_tables(connection: sa.Connection) -> list[str]:
    """Every table of the schema with a tenant_id column: what the database has, not what the models say."""
    return list(
        connection.scalars(
            sa.text(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY table_name"
            )
        )
    )


@pytest.fixture
def demo(app):
    """The demo workspaces, plus one post scheduled in each through the app (as the app role, bound)."""
    with app_context():
        assert seed.seed_demo() is True
        with system_session() as session:
            channels = session.execute(sa.select(Channel.tenant_id, Channel.id)).all()
            first = sa.select(Membership.tenant_id, sa.func.min(Membership.user_id)).group_by(Membership.tenant_id)
            authors = {tenant_id: user_id for tenant_id, user_id in session.execute(first)}
        for tenant_id, channel_id in channels:
            with tenant_session(tenant_id) as session:
                post_service.schedule_post(
                    session,
                    author_id=authors.get(tenant_id),  # an agency-run client may have no members
                    text=f"Row-level security check {channel_id}",
                    channel_ids=[channel_id],
                    schedule=post_service.Schedule(publish_now=False, local_time=IN_A_WEEK, timezone="UTC"),
                )
                session.commit()
    with owner_engine(app).connect() as conn:
        counts = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tenant_tables(conn)}
        tenants = conn.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    assert {t: counts[t] for t in SEEDED if not counts[t]} == {}, str(counts)
    return counts, tenants


@pytest.fixture
def two_tenants(app):
    tenant_a, owner_a = make_workspace()
    tenant_b, owner_b = make_workspace()
    return tenant_a, tenant_b


def test_every_tenant_table_has_forced_rls_and_the_tenant_policy(app):
    """The meta-test: a new table with tenant_id fails here until its migration calls saas.rls.enable_tenant_rls."""
    with owner_engine(app).connect() as conn:
        tables = tenant_tables(conn)
        flags = dict(
            conn.execute(
                sa.text(
                    "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            ).all()
        )
        policies = {
            (row.tablename, row.policyname): row
            for row in conn.execute(sa.text("SELECT * FROM pg_policies WHERE schemaname = 'public'"))
        }
    assert {t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.columns} <= set(tables)
    assert "posts" in tables and "memberships" in tables
    for table in tables:
        assert flags[table], f"{table} has a tenant_id but row-level security is not enabled and forced"
        policy = policies.get((table, rls.POLICY))
        assert policy is not None, f"{table} has no {rls.POLICY} policy"
        assert policy.cmd == "ALL" and policy.permissive == "PERMISSIVE"
        for clause in (policy.qual, policy.with_check):
            assert "current_setting('app.tenant_id'" in clause and "tenant_id" in clause, (table, clause)
    # Nothing else may widen what a policy admits (permissive policies are OR-ed together).
    extra = [key for key in policies if key[1] != rls.POLICY]
    assert extra == [], f"policies besides {rls.POLICY}: {extra}"


def role_and_owners(engine: sa.Engine) -> tuple[sa.Row, set[str]]:
    """Who `engine` connects as (name, superuser, bypassrls, may create tables), and who owns our tables."""
    with engine.connect() as conn:
        me = conn.execute(
            sa.text(
                "SELECT rolname, rolsuper, rolbypassrls, has_schema_privilege('public', 'CREATE') AS may_create "
                "FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
        owners = set(
            conn.scalars(sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).all()
        )
    return me, owners


def test_app_role_is_neither_owner_nor_superuser_nor_bypassrls(app):
    me, owners = role_and_owners(app.extensions["db_engine"])
    assert me.rolname == rls.APP_ROLE
    assert not me.rolsuper and not me.rolbypassrls
    assert me.rolname not in owners
    assert not me.may_create  # tables come from migrations, run as the owner


def test_system_role_bypasses_rls_without_owning_anything(app):
    me, owners = role_and_owners(app.extensions["db_system_engine"])
    assert me.rolname == rls.SYSTEM_ROLE and me.rolbypassrls and not me.rolsuper
    assert me.rolname not in owners and not me.may_create


def test_a_role_that_would_bypass_the_policies_is_named(app):
    assert rls.app_role_problems(app.extensions["db_engine"]) == []
    owner = rls.app_role_problems(owner_engine(app))
    assert any("is a superuser" in p for p in owner) and any("owns tables" in p for p in owner)
    assert rls.app_role_problems(app.extensions["db_system_engine"]) == [f"the role {rls.SYSTEM_ROLE} has BYPASSRLS"]


def test_production_refuses_an_app_role_that_bypasses_the_policies(app, monkeypatch):
    from saas import config, create_app

    monkeypatch.setenv("APP_ENV", "production")
    settings = {
        "SECRET_KEY": "k" * 40,
        "ENCRYPTION_KEYS": app.config["ENCRYPTION_KEYS"],
        "PUBLIC_BASE_URL": "https://app.example.com",
        "REDIS_URL": app.config["REDIS_URL"],
        "SYSTEM_DATABASE_URL": app.config["SYSTEM_DATABASE_URL"],
    }
    with pytest.raises(config.ConfigError, match="is a superuser.*owns tables"):
        create_app({**settings, "DATABASE_URL": app.config["MIGRATION_DATABASE_URL"]})  # the owner: refused
    # (The app role passes the same check: test_a_role_that_would_bypass_the_policies_is_named.)


def test_no_tenant_set_sees_zero_rows_in_every_tenant_table(demo):
    counts, _ = demo
    with app_context(), db.engine().connect() as conn:
        for table in counts:
            assert conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one() == 0, table
    with app_context(), db.new_session() as session:  # an unbound ORM session: raw SQL sees nothing either
        assert session.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == 0


def test_raw_sql_without_a_tenant_filter_returns_only_the_bound_tenants_rows(app, demo):
    counts, tenants = demo
    with owner_engine(app).connect() as conn:
        per_tenant = dict(conn.execute(sa.text("SELECT tenant_id, count(*) FROM posts GROUP BY 1")).all())
    assert len(per_tenant) >= 2
    with app_context():
        for tenant_id in tenants:
            with tenant_session(tenant_id) as session:
                rows = session.execute(sa.text("SELECT tenant_id FROM posts")).scalars().all()
                assert rows == [tenant_id] * per_tenant.get(tenant_id, 0)
                session.commit()  # the next transaction is bound again by the after_begin hook
                assert session.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == per_tenant.get(
                    tenant_id, 0
                )
        with system_session() as session:
            assert session.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == counts["posts"]


def test_binding_after_the_transaction_began_applies_at_once(app, demo):
    with owner_engine(app).connect() as conn:
        tenant_id, expected = conn.execute(
            sa.text("SELECT tenant_id, count(*) FROM posts GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
        ).one()
    with app_context(), db.new_session() as session:
        session.scalars(sa.select(User)).first()  # as a request does: the user is loaded before the workspace
        assert session.in_transaction()
        bind_tenant(session, tenant_id)
        assert session.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == expected


def test_the_tenant_does_not_outlive_its_transaction_on_a_pooled_connection(two_tenants):
    tenant_a, _ = two_tenants
    with app_context():
        with tenant_session(tenant_a.id) as session:
            assert session.execute(sa.text("SELECT count(*) FROM memberships")).scalar_one() == 1
            session.commit()
        # The same pool, likely the same connection: set_config(..., true) ended with the transaction.
        for _ in range(3):
            with db.engine().connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM memberships")).scalar_one() == 0


def test_cross_tenant_insert_is_refused_by_the_database(two_tenants):
    tenant_a, tenant_b = two_tenants
    newcomer = make_user()
    insert = sa.text("INSERT INTO memberships (tenant_id, user_id, role) VALUES (:tenant, :user, 'owner')")
    with app_context():
        with tenant_session(tenant_a.id) as session:
            with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
                session.execute(insert, {"tenant": tenant_b.id, "user": newcomer.id})
        with db.engine().begin() as conn, pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
            conn.execute(insert, {"tenant": tenant_b.id, "user": newcomer.id})  # no tenant set: refused too
        with system_session() as session:
            assert session.scalars(sa.select(Membership).where(Membership.user_id == newcomer.id)).all() == []


def test_cross_tenant_update_is_refused_or_finds_nothing(two_tenants):
    tenant_a, tenant_b = two_tenants
    with app_context():
        with tenant_session(tenant_a.id) as session:
            # Moving one's own row into another tenant: WITH CHECK refuses the new row.
            with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
                session.execute(sa.text("UPDATE memberships SET tenant_id = :b"), {"b": tenant_b.id})
        with tenant_session(tenant_a.id) as session:
            # Changing the other tenant's rows: they are invisible, so nothing matches.
            changed = session.execute(
                sa.text("UPDATE memberships SET role = 'viewer' WHERE tenant_id = :b"), {"b": tenant_b.id}
            ).rowcount
            deleted = session.execute(sa.text("DELETE FROM memberships WHERE tenant_id = :b"), {"b": tenant_b.id})
            session.commit()
        assert changed == 0 and deleted.rowcount == 0
        with system_session() as session:
            roles = session.execute(sa.select(Membership.tenant_id, Membership.role)).all()
    assert sorted(roles) == sorted([(tenant_a.id, Role.OWNER), (tenant_b.id, Role.OWNER)])


def test_a_workspace_request_pays_at_most_one_statement_per_transaction_for_the_tenant(app, client):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    statements: list[str] = []
    transactions: list[int] = []
    engine = app.extensions["db_engine"]

    def on_statement(_conn, _cursor, statement, *_args):
        statements.append(statement)

    def on_begin(_conn):
        transactions.append(1)

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine, "begin", on_begin)
    try:
        assert client.get(f"/w/{tenant.slug}/calendar").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
        sa.event.remove(engine, "begin", on_begin)
    set_tenant = [s for s in statements if "set_config('app.tenant_id'" in s]
    assert 1 <= len(set_tenant) <= len(transactions), (len(set_tenant), len(transactions))
