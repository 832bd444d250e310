"""Rows for tests. Every factory takes its tenant explicitly: nothing defaults to "tenant 1"."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, wraps
from typing import Any, TypeVar

from flask import Flask

from saas import db, passwords
from tenants import bind_tenant
from tenants import service as tenant_service
from tenants.models import Membership, Role, Tenant, TenantKind, User

PASSWORD = "plum-orchard-lantern-42"
_serial = itertools.count(1)
_app: Flask | None = None  # set by the `app` fixture
F = TypeVar("F", bound=Callable[..., Any])


def use_app(app: Flask) -> None:
    global _app
    _app = app


@contextmanager
def app_context() -> Iterator[None]:
    """The test app's context, for code outside a request (factories, services, jobs)."""
    assert _app is not None, "the `app` fixture sets the factories' app"
    with _app.app_context():
        yield


def _in_app(factory: F) -> F:
    @wraps(factory)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with app_context():
            return factory(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@cache
def _hash(password: str) -> str:
    # Hash each test password once per run; logging in still verifies it for real.
    return passwords.hash_password(password)


@_in_app
def make_user(
    email: str | None = None,
    *,
    name: str | None = None,
    password: str = PASSWORD,
    verified: bool = True,
    timezone: str = "UTC",
) -> User:
    n = next(_serial)
    with db.new_session() as session:
        user = User(
            email=(email or f"user{n}@example.com").lower(),
            name=name or f"Test User {n}",
            password_hash=_hash(password),
            timezone=timezone,
            email_verified_at=datetime.now(UTC) if verified else None,
        )
        session.add(user)
        session.commit()
        return user


@_in_app
def make_tenant(
    name: str | None = None,
    *,
    kind: TenantKind = TenantKind.DIRECT,
    owner: User | None = None,
    managed_by: Tenant | None = None,
    timezone: str = "UTC",
) -> Tenant:
    with db.new_session() as session:
        tenant = tenant_service.create_tenant(
            session,
            name=name or f"Workspace {next(_serial)}",
            kind=kind,
            owner=owner,
            managed_by=managed_by,
            timezone=timezone,
        )
        session.commit()
        return tenant


@_in_app
def add_member(tenant: Tenant, user: User, role: Role) -> Membership:
    with db.new_session() as session:
        bind_tenant(session, tenant.id)
        membership = Membership(user_id=user.id, role=role)
        session.add(membership)
        session.commit()
        return membership


def make_workspace(role: Role = Role.OWNER, **tenant_kwargs: object) -> tuple[Tenant, User]:
    """A tenant with one verified user in `role` (plus an owner when `role` is not owner)."""
    user = make_user()
    if role is Role.OWNER:
        return make_tenant(owner=user, **tenant_kwargs), user  # type: ignore[arg-type]
    tenant = make_tenant(owner=make_user(), **tenant_kwargs)  # type: ignore[arg-type]
    add_member(tenant, user, role)
    return tenant, user


@_in_app
def enable_two_factor(user: User) -> tuple[str, list[str]]:
    """Turn two-factor on for `user` as the set-up page does; returns the app secret and the recovery codes.

    Confirmed with the previous step's code, so a test logging in with the current one is not a replay.
    """
    import pyotp

    from saas.identity import twofactor

    with db.new_session() as session:
        secret = twofactor.begin_setup(session, user.id)
        previous = pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() - 30)
        codes = twofactor.confirm_setup(session, user.id, previous)
        session.commit()
    return secret, codes


@contextmanager
def encryption_keys(app: Flask, keys: str) -> Iterator[None]:
    """Run with ENCRYPTION_KEYS set to `keys` (the key ring is rebuilt), then put the old ones back."""
    old_keys = app.config["ENCRYPTION_KEYS"]
    app.config["ENCRYPTION_KEYS"] = keys
    app.extensions.pop("keyring", None)
    try:
        yield
    finally:
        app.config["ENCRYPTION_KEYS"] = old_keys
        app.extensions.pop("keyring", None)


@_in_app
def make_api_token(tenant: Tenant, user: User, scopes: tuple[str, ...] = ("read", "write", "approve")) -> str:
    """A live API token of `tenant` acting as `user` (a member); returns the secret."""
    from saas.api import tokens

    with db.new_session() as session:
        bind_tenant(session, tenant.id)
        _token, secret = tokens.create(session, name="test", scopes=scopes, user_id=user.id, created_by_id=user.id)
        session.commit()
        return secret
