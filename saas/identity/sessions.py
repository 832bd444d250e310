"""Server-side sessions: created at log-in, checked on every request, listed and revoked by their owner.

The signed cookie carries only a random handle; the row decides whether it still counts. So ending a
session (log out, revoke, log out everywhere, password change) works at the next request of that browser,
and a copied cookie dies with its row.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value
from ua_parser import parse as parse_user_agent

from saas import db
from saas.identity import events
from saas.identity.events import EventKind
from saas.identity.models import UserSession

# Ample for "last seen" and idle timeouts of hours; spares a database write on almost every request.
TOUCH_EVERY = timedelta(minutes=1)
REMEMBER_LIMIT = timedelta(days=30)


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta  # sessions without "keep me logged in" end after this long unseen
    absolute: timedelta  # and this long after log-in, however busy
    remember: timedelta  # "keep me logged in": this long after log-in (never more than 30 days)


def utcnow() -> datetime:
    return datetime.now(UTC)


def timeouts() -> Timeouts:
    config = current_app.config
    return Timeouts(
        idle=config["SESSION_IDLE_TIMEOUT"],
        absolute=config["SESSION_ABSOLUTE_TIMEOUT"],
        remember=min(config["REMEMBER_ME_LIFETIME"], REMEMBER_LIMIT),
    )


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def device_label(user_agent: str) -> str:
    """'Firefox on Windows', or the best part of it we can tell."""
    parsed = parse_user_agent(user_agent or "")
    browser = parsed.user_agent.family if parsed.user_agent and parsed.user_agent.family != "Other" else None
    system = parsed.os.family if parsed.os and parsed.os.family != "Other" else None
    if browser and system:
        return f"{browser} on {system}"[:120]
    return (browser or system or "Unknown browser")[:120]


def create(session: so.Session, user_id: int, *, remember: bool, now: datetime | None = None) -> str:
    """A new session for `user_id` from this request; returns the handle for the cookie (shown once)."""
    now = now or utcnow()
    limits = timeouts()
    handle = secrets.token_urlsafe(32)
    agent = events.client_agent()
    session.add(
        UserSession(
            handle_hash=_digest(handle),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            authenticated_at=now,
            expires_at=now + (limits.remember if remember else limits.absolute),
            remember=remember,
            ip=events.client_ip(),
            user_agent=agent,
            device=device_label(agent),
        )
    )
    session.flush()
    return handle


def is_alive(row: UserSession, now: datetime, limits: Timeouts) -> bool:
    if row.revoked_at is not None or row.expires_at <= now:
        return False
    return row.remember or row.last_seen_at > now - limits.idle


def find_alive(session: so.Session, handle: str, user_id: int, now: datetime | None = None) -> UserSession | None:
    """The live session this handle names for `user_id`, marked as seen now; None if it has ended."""
    now = now or utcnow()
    row = session.scalar(sa.select(UserSession).where(UserSession.handle_hash == _digest(handle)))
    if row is None or row.user_id != user_id or not is_alive(row, now, timeouts()):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        # In its own short transaction, so the request's own work (or rollback) does not decide it.
        with current_app.extensions["db_engine"].begin() as conn:
            conn.execute(
                sa.update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now, ip=events.client_ip())
            )
        # Mirror it without marking the row dirty: the request's own flush must not write it a second time.
        set_committed_value(row, "last_seen_at", now)
        set_committed_value(row, "ip", events.client_ip())
    return row


def active(session: so.Session, user_id: int, now: datetime | None = None) -> list[UserSession]:
    """The user's live sessions, most recently seen first."""
    now = now or utcnow()
    limits = timeouts()
    rows = session.scalars(
        sa.select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > now)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return [row for row in rows if is_alive(row, now, limits)]


def revoke(session: so.Session, user_id: int, session_id: int) -> bool:
    """End one of the user's sessions. False when it is not theirs or already ended."""
    ended = db.rows_affected(
        session.execute(
            sa.update(UserSession)
            .where(UserSession.id == session_id, UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    )
    if ended:
        events.record(session, EventKind.SESSION_REVOKED, user_id)
    return bool(ended)


def revoke_all(session: so.Session, user_id: int, *, keep: int | None = None) -> int:
    """End every session of the user, except `keep` (this browser's) when given. Returns how many ended."""
    statement = sa.update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    return db.rows_affected(session.execute(statement.values(revoked_at=utcnow())))


def end(row: UserSession) -> None:
    """Log this session out."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()


def mark_authenticated(row: UserSession) -> None:
    """The password (and second factor) was just entered again in this session."""
    row.authenticated_at = utcnow()


def prune(session: so.Session, keep_for: timedelta = timedelta(days=30)) -> int:
    """Delete session rows that ended (revoked or expired) more than `keep_for` ago. Returns how many."""
    cutoff = utcnow() - keep_for
    return db.rows_affected(
        session.execute(
            sa.delete(UserSession).where(sa.or_(UserSession.revoked_at < cutoff, UserSession.expires_at < cutoff))
        )
    )
