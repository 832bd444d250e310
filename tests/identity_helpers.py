"""Helpers shared by the two-factor, session and re-authentication tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import sqlalchemy as sa

from saas import db
from saas.identity.models import AccountEvent, UserSession
from tests.factories import PASSWORD, app_context


def code_for(secret: str, steps: int = 0) -> str:
    """The authenticator app's code, `steps` 30-second steps from now."""
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + 30 * steps)


def log_in_with_code(client: Any, email: str, secret_or_code: str, *, is_code: bool = False, **extra: Any) -> Any:
    """Password, then the second step; returns the response of the second step."""
    first = client.submit("/login", {"email": email, "password": PASSWORD, **extra})
    assert first.status_code == 302 and first.headers["Location"] == "/login/two-factor", first.data
    code = secret_or_code if is_code else code_for(secret_or_code)
    return client.submit("/login/two-factor", {"code": code}, page="/login/two-factor")


def sessions_of(user_id: int) -> list[UserSession]:
    with app_context(), db.new_session() as session:
        return list(
            session.scalars(sa.select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id))
        )


def age_sessions(user_id: int, **ago: timedelta) -> None:
    """Move the user's session timestamps into the past, as if that much time had gone by."""
    now = datetime.now(UTC)
    with app_context(), db.new_session() as session:
        session.execute(
            sa.update(UserSession)
            .where(UserSession.user_id == user_id)
            .values({column: now - delta for column, delta in ago.items()})
        )
        session.commit()


def event_kinds(user_id: int | None) -> list[str]:
    with app_context(), db.new_session() as session:
        where = AccountEvent.user_id.is_(None) if user_id is None else AccountEvent.user_id == user_id
        return list(session.scalars(sa.select(AccountEvent.kind).where(where).order_by(AccountEvent.id)))


def wrong_code(secret: str) -> str:
    """Six digits the app would not show now (nor a step either side)."""
    valid = {code_for(secret, steps) for steps in (-2, -1, 0, 1, 2)}
    return next(c for c in ("123456", "654321", "111111", "222222", "333333", "444444") if c not in valid)
