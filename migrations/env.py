"""Alembic environment: migrations run as the tables' owner, MIGRATION_DATABASE_URL (or an explicit URL in the config).

The app's own role (DATABASE_URL) cannot create tables; see saas/rls.py for the roles.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy import pool

import saas.models  # noqa: F401  (registers every table on Base.metadata)
from saas import config as app_config
from saas.db import Base

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or app_config.load()["MIGRATION_DATABASE_URL"]
    if not url:
        raise app_config.ConfigError(
            "MIGRATION_DATABASE_URL (the tables' owner) is not set; `make run` sets it for the embedded server."
        )
    return app_config.normalise_database_url(url)


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is not None:  # tests hand over an open connection
        context.configure(connection=connectable, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
