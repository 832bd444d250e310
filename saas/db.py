"""The declarative base, the engine and the request session.

One `sessionmaker` serves web requests, jobs and the CLI alike, so the tenant
scoping listeners in `tenants.scoping` see every ORM statement the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm as so

if TYPE_CHECKING:
    from flask import Flask

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# Unbound until init_app(); every session it makes shares the app's engine.
SessionFactory = so.sessionmaker(expire_on_commit=False)

# The session of the current web request (thread-local), removed at teardown so
# a tenant binding never outlives its request.
session = so.scoped_session(SessionFactory)


def make_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    SessionFactory.configure(bind=engine)
    app.extensions["db_engine"] = engine

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        session.remove()


def engine() -> sa.Engine:
    bind = SessionFactory.kw.get("bind")
    if bind is None:
        raise RuntimeError("saas.db is not initialised: call create_app() first")
    return bind
