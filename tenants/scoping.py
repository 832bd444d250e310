"""Bind every ORM statement of a session to one tenant, and fail closed otherwise.

A session carries either `info["tenant_id"]` (work for one tenant) or
`info["system"] = True` (cross-tenant work: the dispatcher, webhooks, the
membership lookup that decides which tenant a request is for). A session with
neither that touches a `TenantScoped` table raises `TenantScopeError`: a
forgotten filter must fail loudly, never return another workspace's rows.

System sessions are opened only through `system_session()`, so
`grep -rn "system_session(" saas tenants billing` lists every cross-tenant
place; `tests/test_scoping.py` pins that list.

This is the first wall. It does not cover raw SQL (`text()`, Core on the
engine); row-level security in PostgreSQL is the second wall (`saas/rls.py`):
each transaction of a bound session sets `app.tenant_id`, which the tables'
policies compare with, and system sessions connect as a role that bypasses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy import event

from saas import db
from saas.rls import SET_TENANT


class TenantScopeError(RuntimeError):
    """A tenant-scoped table was touched outside its tenant."""


class TenantScoped:
    """Mixin for every table owned by one tenant. The listeners below key on it.

    Tables using it also declare `UniqueConstraint("tenant_id", "id")` so their
    children can reference them by `(tenant_id, id)` composite foreign keys, which
    makes a row pointing into another tenant impossible in the database itself.
    """

    tenant_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


def bind_tenant(session: so.Session, tenant_id: int) -> None:
    """Scope `session` to `tenant_id` for the rest of its life.

    Rebinding to another tenant raises: the identity map may already hold the
    first tenant's rows, and `Session.get()` answers from it without SQL.
    """
    if session.info.get("system"):
        raise TenantScopeError("a system session cannot be bound to a tenant")
    bound = session.info.get("tenant_id")
    if bound is not None and bound != tenant_id:
        raise TenantScopeError(f"session already bound to tenant {bound}, not {tenant_id}")
    if bound is None and session.in_transaction():
        # Bound after its transaction began (a request that loaded the user first): the hook below has
        # run already (or runs now, still unbound), so tell the database here. Later transactions get it
        # from the hook.
        connection = session.connection()
        session.info["tenant_id"] = tenant_id
        connection.execute(SET_TENANT, {"tenant_id": str(tenant_id)})
    session.info["tenant_id"] = tenant_id


@event.listens_for(so.Session, "after_begin")
def _set_database_tenant(session: so.Session, _transaction: Any, connection: sa.Connection) -> None:
    """One statement per transaction of a bound session: the tenant the row-level policies admit."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is not None:
        connection.execute(SET_TENANT, {"tenant_id": str(tenant_id)})


def bound_tenant_id(session: so.Session) -> int | None:
    return session.info.get("tenant_id")


@contextmanager
def tenant_session(tenant_id: int) -> Iterator[so.Session]:
    """Open a fresh session for one tenant's work (jobs, CLI). Commit is yours."""
    with db.new_session() as session:
        bind_tenant(session, tenant_id)
        yield session


@contextmanager
def system_session(autocommit: bool = False) -> Iterator[so.Session]:
    """Open a session that sees every tenant. Each call site is reviewed and listed.

    `autocommit`: every statement commits on its own (for a hot lookup that only reads, or writes one row).
    """
    with db.new_session(info={"system": True, "autocommit": autocommit}) as session:
        yield session


def _touches_tenant_table(state: so.ORMExecuteState) -> bool:
    mappers = list(state.all_mappers)
    if state.is_relationship_load and state.lazy_loaded_from is not None:
        # all_mappers may not name the target of a lazy load; the statement's
        # entity does.
        entity = state.bind_mapper
        if entity is not None:
            mappers.append(entity)
    return any(issubclass(m.class_, TenantScoped) for m in mappers)


@event.listens_for(so.Session, "do_orm_execute")
def _scope_statement(state: so.ORMExecuteState) -> None:
    if state.is_column_load:
        return  # refreshing an attribute of a row this session already loaded
    if not (state.is_select or state.is_update or state.is_delete):
        return
    session = state.session
    if session.info.get("system"):
        return
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        if _touches_tenant_table(state):
            raise TenantScopeError(
                f"tenant-scoped query in a session bound to no tenant: {[m.class_.__name__ for m in state.all_mappers]}"
            )
        return
    # Also applied to relationship loads: a parent created in this session (not
    # loaded by a scoped select) would otherwise lazy-load without the criterion.
    state.statement = state.statement.options(
        so.with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,  # a plain int: becomes a bound parameter
            include_aliases=True,
        )
    )


@event.listens_for(so.Session, "before_flush")
def _stamp_and_check_tenant(session: so.Session, _ctx: Any, _instances: Any) -> None:
    if session.info.get("system"):
        return
    tenant_id = session.info.get("tenant_id")
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if tenant_id is None:
            raise TenantScopeError(f"insert of {type(obj).__name__} in a session bound to no tenant")
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantScopeError(
                f"{type(obj).__name__} names tenant {obj.tenant_id}, but the session is bound to {tenant_id}"
            )
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and sa.inspect(obj).attrs.tenant_id.history.has_changes():
            raise TenantScopeError(f"{type(obj).__name__} cannot move to another tenant")
