"""Connect links: the agency emails one, and the client connects its own account to the workspace through it,
without an account here and without sharing a password. Expires, and works once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.channels.models import ConnectLink
from tenants import tokens
from tenants.models import Tenant
from tenants.scoping import system_session

LIFETIME = timedelta(days=7)


class LinkProblem(ValueError):
    """The link cannot be used; the message says why."""


@dataclass(frozen=True)
class Grant:
    link_id: int
    tenant_id: int
    slug: str
    workspace: str


def create(session: so.Session, email: str, created_by_id: int, now: datetime) -> str:
    """A new link for the workspace `session` is bound to; returns its secret (only the digest is stored)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise LinkProblem("Enter the email address of the person who will connect the account.")
    raw, digest = tokens.new_token()
    session.add(ConnectLink(token_hash=digest, email=email, created_by_id=created_by_id, expires_at=now + LIFETIME))
    session.flush()
    return raw


def grant_for(raw: str, now: datetime) -> Grant:
    """What a live link allows; LinkProblem when it is unknown, used or expired."""
    with system_session() as session:  # a connect link names no workspace: its token finds it
        link = session.scalar(sa.select(ConnectLink).where(ConnectLink.token_hash == tokens.digest(raw)))
        if link is None:
            raise LinkProblem("This connect link is not valid. Check that you copied all of it.")
        if link.used_at is not None:
            raise LinkProblem("This connect link has already been used. Ask for a new one if you need it.")
        if link.expires_at <= now:
            raise LinkProblem("This connect link has expired. Ask for a new one.")
        tenant = session.get(Tenant, link.tenant_id)
        assert tenant is not None
        return Grant(link.id, tenant.id, tenant.slug, tenant.name)


def use(session: so.Session, link_id: int, now: datetime) -> None:
    """Spend the link (in the transaction that stores the channel); LinkProblem when it was spent meanwhile."""
    spent = session.execute(
        sa.update(ConnectLink)
        .where(ConnectLink.id == link_id, ConnectLink.used_at.is_(None))
        .values(used_at=now)
        .returning(ConnectLink.id)
    ).first()
    if spent is None:
        raise LinkProblem("This connect link has already been used. Ask for a new one if you need it.")
