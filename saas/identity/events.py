"""The account security log: one row per log-in, failed log-in, 2FA change, revoked session...

Per user, not per workspace: a person's sign-ins belong to them. Workspace owners see their members'
events through the audit viewer, which reads `for_users`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import has_request_context, request

from saas.identity.models import AccountEvent


class EventKind(enum.StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    TWO_FACTOR_FAILED = "two_factor_failed"
    LOGOUT = "logout"
    REAUTHENTICATED = "reauthenticated"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    TWO_FACTOR_DISABLED = "two_factor_disabled"
    RECOVERY_CODE_USED = "recovery_code_used"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
    SESSION_REVOKED = "session_revoked"
    OTHER_SESSIONS_REVOKED = "other_sessions_revoked"
    ALL_SESSIONS_REVOKED = "all_sessions_revoked"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGED = "email_changed"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    EventKind.LOGIN: "Logged in",
    EventKind.LOGIN_FAILED: "Failed log-in",
    EventKind.TWO_FACTOR_FAILED: "Wrong two-factor code",
    EventKind.LOGOUT: "Logged out",
    EventKind.REAUTHENTICATED: "Confirmed identity",
    EventKind.TWO_FACTOR_ENABLED: "Two-factor authentication turned on",
    EventKind.TWO_FACTOR_DISABLED: "Two-factor authentication turned off",
    EventKind.RECOVERY_CODE_USED: "Recovery code used",
    EventKind.RECOVERY_CODES_REGENERATED: "New recovery codes made",
    EventKind.SESSION_REVOKED: "Session logged out",
    EventKind.OTHER_SESSIONS_REVOKED: "Other sessions logged out",
    EventKind.ALL_SESSIONS_REVOKED: "Logged out everywhere",
    EventKind.PASSWORD_CHANGED: "Password changed",
    EventKind.PASSWORD_RESET: "Password reset by email",
    EventKind.EMAIL_CHANGED: "Email address changed",
}


def label_of(kind: str) -> str:
    """What an event kind reads as on a page ("Failed log-in")."""
    try:
        return LABELS[EventKind(kind)]
    except ValueError:
        return kind.replace("_", " ").capitalize()


def client_ip() -> str:
    return (request.remote_addr or "unknown")[:45] if has_request_context() else "-"


def client_agent() -> str:
    return (request.user_agent.string or "")[:400] if has_request_context() else ""


def record(session: so.Session, kind: EventKind, user_id: int | None) -> None:
    """Add one event (committed with the caller's transaction), from this request's address and browser."""
    session.add(AccountEvent(user_id=user_id, kind=kind.value, ip=client_ip(), user_agent=client_agent()))


def for_users(session: so.Session, user_ids: Iterable[int], limit: int = 200) -> list[AccountEvent]:
    """The newest events of these users, newest first (the workspace audit viewer shows its members')."""
    return list(
        session.scalars(
            sa.select(AccountEvent)
            .where(AccountEvent.user_id.in_(list(user_ids)))
            .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
            .limit(limit)
        )
    )
