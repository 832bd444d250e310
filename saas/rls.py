"""PostgreSQL row-level security: the second wall behind `tenants.scoping`.

Three roles reach the database:

- the **owner** owns the tables and runs the migrations (MIGRATION_DATABASE_URL);
- the **app** role (DATABASE_URL) serves requests and jobs: not owner, not superuser,
  NOBYPASSRLS, so every tenant table's policy applies to it, raw SQL included;
- the **system** role (SYSTEM_DATABASE_URL) has BYPASSRLS and is used only by
  `tenants.system_session` (dispatcher, webhooks, token lookups, agency console).

Each tenant table has RLS enabled and forced, and one policy: a row is visible and
writable only when its `tenant_id` equals the transaction-local setting
`app.tenant_id`, which `tenants.scoping` sets from the session's bound tenant. An
unset (or reset, hence empty) setting matches nothing, so a forgotten binding sees
no rows and cannot write any.

`subscriptions` also admits, for reading only, the rows of the agency-client
relation (a managed client is covered by its agency's plan). `tenants` itself has
no policy: it holds no content (name, slug, kind), and the membership lookup and
login read it before any tenant is known.
"""

from __future__ import annotations

import sqlalchemy as sa

SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
# NULLIF: after one transaction set it, the setting reads '' (not NULL) on that connection; ''::bigint would raise.
_CURRENT_TENANT = f"NULLIF(current_setting('{SETTING}', true), '')::bigint"

# Run at the start of each transaction of a tenant-bound session (is_local = true: it ends with the transaction).
SET_TENANT = sa.text(f"SELECT set_config('{SETTING}', :tenant_id, true)")


def tenant_rls_statements(table: str, also_readable: str | None = None) -> list[str]:
    """The DDL that puts `table` (which has a tenant_id column) behind the tenant policy.

    `also_readable`: an SQL condition under which other rows may be read (never written).
    """
    check = f"tenant_id = {_CURRENT_TENANT}"
    using = f"{check} OR ({also_readable})" if also_readable else check
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY} ON "{table}"',
        f'CREATE POLICY {POLICY} ON "{table}" USING ({using}) WITH CHECK ({check})',
    ]


# Billing spans an agency and its managed clients: a client is covered by its agency's subscription, and the
# agency's Billing page shows which clients pay for themselves. Each reads (never writes) the other's row.
BILLING_RELATIVES = (
    f"tenant_id IN (SELECT managed_by_id FROM tenants WHERE id = {_CURRENT_TENANT} "
    f"UNION ALL SELECT id FROM tenants WHERE managed_by_id = {_CURRENT_TENANT})"
)


def app_role_problems(engine: sa.Engine) -> list[str]:
    """Why `engine`'s role would slip past the policies (superuser, BYPASSRLS, owner of a table); [] if none.

    Connecting the app as the tables' owner is the classic way RLS ends up enforcing nothing.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
                "EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tableowner = r.rolname) AS owns "
                "FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
    problems = ["is a superuser"] * row.rolsuper + ["has BYPASSRLS"] * row.rolbypassrls + ["owns tables"] * row.owns
    return [f"the role {row.rolname} {problem}" for problem in problems]


def enable_tenant_rls(table: str, also_readable: str | None = None) -> None:
    """For migrations: call it for every new table that has a tenant_id (tests/test_rls.py checks)."""
    from alembic import op

    for statement in tenant_rls_statements(table, also_readable):
        op.execute(statement)


def disable_tenant_rls(table: str) -> None:
    from alembic import op

    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


def provision_roles(owner_url: str, app_role: str, system_role: str, password: str) -> None:
    """Create (or bring up to date) the app and system roles, as the owner of the schema.

    Run once per database before or after migrating: the default privileges grant every
    table the owner creates later to both roles, so new migrations need no GRANTs.
    Development and tests call it (saas.embedded); production may run the same SQL by hand.
    """
    engine = sa.create_engine(owner_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            for role, bypass in ((app_role, "NOBYPASSRLS"), (system_role, "BYPASSRLS")):
                exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
                verb = "ALTER" if exists else "CREATE"
                # Identifiers and the password cannot be bound parameters in DDL; they come from our own code.
                conn.execute(
                    sa.text(
                        f'{verb} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {bypass} '
                        f"PASSWORD '{password}'"
                    )
                )
                conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
                conn.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
                dml = "SELECT, INSERT, UPDATE, DELETE"
                conn.execute(sa.text(f'GRANT {dml} ON ALL TABLES IN SCHEMA public TO "{role}"'))
                conn.execute(sa.text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
                conn.execute(sa.text(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {dml} ON TABLES TO "{role}"'))
                conn.execute(
                    sa.text(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"')
                )
    finally:
        engine.dispose()


APP_ROLE = "multipost_app"
SYSTEM_ROLE = "multipost_system"


def provision_urls(owner_url: str, password: str) -> dict[str, str]:
    """Provision the two roles on `owner_url`'s database; return the three URLs the config reads.

    For development and tests (saas.embedded, tests/conftest.py); `password` must be plain
    letters and digits (it is written into SQL and URLs).
    """
    if not password.isalnum():
        raise ValueError("the role password must be letters and digits only")
    provision_roles(owner_url, APP_ROLE, SYSTEM_ROLE, password)
    return {
        "DATABASE_URL": _url_for_role(owner_url, APP_ROLE, password),
        "SYSTEM_DATABASE_URL": _url_for_role(owner_url, SYSTEM_ROLE, password),
        "MIGRATION_DATABASE_URL": owner_url,
    }


def _url_for_role(owner_url: str, role: str, password: str) -> str:
    """`owner_url` with another user and password (same host, port and database)."""
    return sa.make_url(owner_url).set(username=role, password=password).render_as_string(hide_password=False)
