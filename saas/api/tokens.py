"""API tokens: made (the secret shown once), listed, revoked, and turned into a request's grant.

A token is `mp_` + 43 random URL-safe characters; only its SHA-256 is stored, with the first
characters for people to recognise it. A token acts as the person it was made for, within its
scopes, and only while that person still works in the workspace: leaving, or losing an agency
assignment, stops it at the next request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.api import grant_cache
from saas.api.models import ApiToken, Scope
from tenants import agency, tokens
from tenants import service as tenant_service
from tenants.models import Membership, Tenant, TenantKind, User
from tenants.scoping import system_session
from tenants.service import Workspace

PREFIX = "mp_"
SHOWN_PREFIX = 10  # "mp_" and 7 characters of the secret: enough to tell tokens apart, useless to guess
MAX_NAME = 80
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


class TokenError(ValueError):
    """A token that cannot be made as asked; the message says why."""


class ClientUnreachable(LookupError):
    """The token is good, but not for that client (not the agency's, or its person is not assigned): 404."""


@dataclass(frozen=True)
class Grant:
    """Who a request's token speaks for, and in which workspace (a client's, for an agency token on its path)."""

    token_id: int
    token_name: str
    token_tenant_id: int
    user_id: int
    user_name: str
    scopes: frozenset[Scope]
    workspace: Workspace


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    chosen = []
    for value in values:
        value = value.strip().lower()
        if not value:
            continue
        try:
            chosen.append(Scope(value))
        except ValueError:
            raise TokenError(f"Unknown scope {value!r}: choose from read, write and approve.") from None
    if not chosen:
        raise TokenError("Choose at least one scope: read, write or approve.")
    if Scope.READ not in chosen:
        chosen.insert(0, Scope.READ)  # writing or approving needs to read what it acts on
    return list(dict.fromkeys(chosen))


def create(
    session: so.Session, *, name: str, scopes: Iterable[str], user_id: int, created_by_id: int | None
) -> tuple[ApiToken, str]:
    """A new token of the session's workspace acting as `user_id` (a member); returns it and the secret, shown once."""
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name, so you know later what uses it.")
    if len(name) > MAX_NAME:
        raise TokenError(f"Keep the name to {MAX_NAME} characters.")
    chosen = parse_scopes(scopes)
    if session.scalar(sa.select(Membership.id).where(Membership.user_id == user_id)) is None:
        raise TokenError("A token acts as a member of this workspace; that person is not one.")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        prefix=raw[:SHOWN_PREFIX],
        token_hash=tokens.digest(raw),
        scopes=[s.value for s in chosen],
        user_id=user_id,
        created_by_id=created_by_id,
    )
    session.add(token)
    session.flush()
    return token, raw


def listed(session: so.Session) -> list[ApiToken]:
    return list(session.scalars(sa.select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))


def get(session: so.Session, token_id: int) -> ApiToken | None:
    return session.scalar(sa.select(ApiToken).where(ApiToken.id == token_id))


def revoke(session: so.Session, token_id: int, now: datetime | None = None) -> ApiToken | None:
    token = get(session, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = now or utcnow()
    return token


def authenticate(raw: str, client_id: int | None = None, now: datetime | None = None) -> Grant | None:
    """The grant of a live token, in its own workspace or (agency tokens) in client `client_id`; else None.

    None: an unknown or revoked token, or one whose person left. ClientUnreachable: a client the token may
    not act on, whether or not it exists (404 either way). A grant found is remembered by this process
    until anything it was read from changes (saas.api.grant_cache); refusals are never remembered.
    """
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    now = now or utcnow()
    key = (tokens.digest(raw), client_id)
    epoch = grant_cache.current_epoch()  # read before the lookup: a change racing it leaves this epoch behind
    remembered = grant_cache.recall(key, epoch)
    if remembered is not None:
        if now - remembered.last_used_at >= LAST_USED_EVERY:
            remembered.last_used_at = now
            with system_session(autocommit=True) as session:
                _touch(session, remembered.grant.token_id, None, now)
        return remembered.grant
    grant = _look_up(key[0], client_id, now)
    if grant is not None:
        grant_cache.remember(key, grant, epoch, now)
    return grant


def _look_up(digest: str, client_id: int | None, now: datetime) -> Grant | None:
    # A token names no workspace: its hash finds it, across tenants (one query, with its person's role).
    with system_session(autocommit=True) as session:
        row = session.execute(
            sa.select(ApiToken, Membership.role, Tenant, User.name)
            .join(
                Membership, sa.and_(Membership.tenant_id == ApiToken.tenant_id, Membership.user_id == ApiToken.user_id)
            )
            .join(Tenant, Tenant.id == ApiToken.tenant_id)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        token, role, tenant, user_name = row
        _touch(session, token.id, token.last_used_at, now)
        workspace = tenant_service.workspace_view(tenant, role)
        if client_id is not None:
            client = session.get(Tenant, client_id)
            if tenant.kind is not TenantKind.AGENCY or client is None or client.managed_by_id != tenant.id:
                raise ClientUnreachable(client_id)
            client_role = agency.agency_role_in_client(session, token.user_id, client)
            if client_role is None:
                raise ClientUnreachable(client_id)
            workspace = tenant_service.workspace_view(client, client_role, tenant)
        return Grant(
            token.id,
            token.name,
            token.tenant_id,
            token.user_id,
            user_name,
            frozenset(Scope(s) for s in token.scopes),
            workspace,
        )


def _touch(session: so.Session, token_id: int, last_used_at: datetime | None, now: datetime) -> None:
    # Written at most once a minute: a busy integration must not turn every read into a write. The write
    # decides no grant, so it does not make every process look its grants up again.
    if last_used_at is None or now - last_used_at >= LAST_USED_EVERY:
        session.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == token_id)
            .values(last_used_at=now)
            .execution_options(**{grant_cache.UNCHANGED: True})
        )
        session.commit()


def clients_of(session: so.Session, grant: Grant) -> list[Tenant]:
    """The clients an agency token may act on: all the agency's for its owners and admins, else the assigned ones.

    `session` is bound to the agency: the memberships and assignments read are the agency's own rows.
    """
    if grant.workspace.kind is not TenantKind.AGENCY:
        return []
    return [
        client
        for client in agency.clients(session, grant.workspace.tenant_id)
        if agency.agency_role_in_client(session, grant.user_id, client) is not None
    ]
