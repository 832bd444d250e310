"""The declarative base, the engines and the request session.

Two engines per app: the app role's (DATABASE_URL, subject to row-level security)
serves web requests, jobs and the CLI; the system role's (SYSTEM_DATABASE_URL,
BYPASSRLS) serves only sessions opened with `info={"system": True}`, which
`tenants.system_session` does. Both sessionmakers make plain `Session`s, so the
tenant scoping listeners in `tenants.scoping` see every ORM statement the same way.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import orjson
import psycopg.types.json
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def db_enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    """A string column limited to the enum's values by a CHECK constraint (easy to migrate)."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda e: [m.value for m in e],
    )


def utc_now_default() -> sa.FunctionElement[datetime]:
    """The database clock: the one clock every process agrees on."""
    return sa.func.now()


# JSONB columns (targets, media, threads) come back parsed: orjson does it several times faster than `json`,
# which a page of fifty posts with their targets (hundreds of small documents) notices.
psycopg.types.json.set_json_loads(orjson.loads)


def _json_text(value: Any) -> str:
    # JSONB values written by orjson too (int keys become strings, as with `json`).
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5) -> sa.Engine:
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow, json_serializer=_json_text
    )


def init_app(app: Flask) -> None:
    # A publish job runs PUBLISH_THREADS requests at once, each needing a connection for a moment;
    # a smaller pool would make them queue for connections instead of for the network.
    engine = make_engine(app.config["DATABASE_URL"], pool_size=max(5, app.config["PUBLISH_THREADS"]), max_overflow=5)
    system_url = app.config.get("SYSTEM_DATABASE_URL") or app.config["DATABASE_URL"]
    # The dispatcher, webhooks and token lookups: a few connections at a time.
    system = engine if system_url == app.config["DATABASE_URL"] else make_engine(system_url)
    app.extensions["db_engine"] = engine
    app.extensions["db_system_engine"] = system
    from saas.api import grant_cache  # the API's remembered grants end when a table they read is written

    for watched in {engine, system}:
        grant_cache.watch(app, watched)
    app.extensions["db_sessionmaker"] = so.sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["db_system_sessionmaker"] = so.sessionmaker(bind=system, expire_on_commit=False)
    # Lookups that only read (an API token by its hash): each statement on its own, no BEGIN and ROLLBACK
    # round trips around it.
    reader = system.execution_options(isolation_level="AUTOCOMMIT")
    app.extensions["db_system_reader"] = so.sessionmaker(bind=reader, expire_on_commit=False)

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        session.remove()


def engine() -> sa.Engine:
    """The current app's engine (the app role: row-level security applies)."""
    return engine_of(current_app)


def engine_of(app: Flask) -> sa.Engine:
    return app.extensions["db_engine"]


def system_engine() -> sa.Engine:
    """The system role's engine (bypasses row-level security): cross-tenant set-based work only."""
    return current_app.extensions["db_system_engine"]


def new_session(**kwargs: Any) -> so.Session:
    """A fresh session on the current app's database. Close it (use `with`).

    `info={"system": True}` (what `tenants.system_session` passes) connects as the system role.
    """
    info = kwargs.get("info", {})
    if info.get("system"):
        factory = "db_system_reader" if info.get("autocommit") else "db_system_sessionmaker"
        return current_app.extensions[factory](**kwargs)
    return current_app.extensions["db_sessionmaker"](**kwargs)


# The session of the current web request (per thread), removed when the app
# context ends, so a tenant binding never outlives its request.
session = so.scoped_session(new_session)


def rows_affected(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (typed: `Result` does not declare `rowcount`)."""
    return int(getattr(result, "rowcount", 0) or 0)
