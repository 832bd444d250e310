"""Accounts: sign up, verify, log in, reset and change passwords, end sessions, profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from saas import passwords
from saas.identity import events, sessions
from saas.identity.events import EventKind
from tenants import service as tenant_service
from tenants import tokens
from tenants.models import Tenant, TenantKind, TokenPurpose, User, UserToken

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)
TOKEN_LIFETIME = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=48),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}


class TokenError(ValueError):
    """An emailed link that cannot be used; the message says why and what to do."""


class PasswordRejected(ValueError):
    """The new password breaks a rule; the message is shown next to the field."""


class EmailRejected(ValueError):
    """The new email address cannot be used; the message is shown next to the field."""


class WrongPassword(ValueError):
    """The current password given to confirm a change is not the user's."""


@dataclass(frozen=True)
class SignUp:
    user: User
    created: bool  # False: the address already had an account (we say the same to the visitor)
    tenant: Tenant | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def user_by_email(session: so.Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def sign_up(session: so.Session, *, email: str, name: str, password: str, business_name: str, timezone: str) -> SignUp:
    """Create a user and the self-serve tenant they own; binds `session` to that tenant."""
    existing = user_by_email(session, email)
    if existing is not None:
        passwords.hash_password(password)  # spend the same time as a real sign-up: no enumeration by timing
        return SignUp(existing, created=False)
    user = create_user(session, email=email, name=name, password=password, verified=False, timezone=timezone)
    tenant = tenant_service.create_tenant(
        session, name=business_name.strip(), kind=TenantKind.DIRECT, owner=user, timezone=timezone
    )
    return SignUp(user, created=True, tenant=tenant)


def create_user(
    session: so.Session, *, email: str, name: str, password: str, verified: bool, timezone: str = "UTC"
) -> User:
    """Create a user with no tenant yet (sign-up, invitation acceptance, seeding)."""
    problem = passwords.password_problem(password, email=email, name=name)
    if problem:
        raise PasswordRejected(problem)
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=passwords.hash_password(password),
        timezone=timezone,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(user)
    session.flush()
    return user


def issue_token(session: so.Session, user: User, purpose: TokenPurpose) -> str:
    """Create a single-use token for `user`; earlier unused ones of the same purpose stop working."""
    now = utcnow()
    session.execute(
        sa.update(UserToken)
        .where(UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None))
        .values(used_at=now)
    )
    raw, digest = tokens.new_token()
    session.add(
        UserToken(user_id=user.id, purpose=purpose, token_hash=digest, expires_at=now + TOKEN_LIFETIME[purpose])
    )
    session.flush()
    return raw


def peek_token(session: so.Session, raw: str, purpose: TokenPurpose) -> User:
    """The user a token is for, if it can still be used (does not use it up)."""
    token = session.scalar(
        sa.select(UserToken).where(UserToken.token_hash == tokens.digest(raw), UserToken.purpose == purpose)
    )
    return _check_token(session, token)


def _check_token(session: so.Session, token: UserToken | None) -> User:
    if token is None:
        raise TokenError("This link is not valid. Check that you copied all of it, or ask for a new one.")
    if token.used_at is not None:
        raise TokenError("This link has already been used. Ask for a new one if you still need it.")
    if token.expires_at <= utcnow():
        raise TokenError("This link has expired. Ask for a new one.")
    user = session.get(User, token.user_id)
    assert user is not None  # tokens are deleted with their user
    return user


def _use_token(session: so.Session, raw: str, purpose: TokenPurpose) -> User:
    # Locked so that two clicks on one link use it once.
    token = session.scalar(
        sa.select(UserToken)
        .where(UserToken.token_hash == tokens.digest(raw), UserToken.purpose == purpose)
        .with_for_update()
    )
    user = _check_token(session, token)
    assert token is not None
    token.used_at = utcnow()
    return user


def verify_email(session: so.Session, raw: str) -> User:
    user = _use_token(session, raw, TokenPurpose.VERIFY_EMAIL)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    return user


def authenticate(session: so.Session, email: str, password: str) -> User | None:
    """The user whose email and password these are, or None. Costs the same either way."""
    user = user_by_email(session, email)
    if not passwords.verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    return user


def _set_password(user: User, new_password: str) -> None:
    problem = passwords.password_problem(new_password, email=user.email, name=user.name)
    if problem:
        raise PasswordRejected(problem)
    user.password_hash = passwords.hash_password(new_password)


def reset_password(session: so.Session, raw: str, new_password: str) -> User:
    """Set a new password from an emailed link; every session of the account ends."""
    user = _use_token(session, raw, TokenPurpose.RESET_PASSWORD)
    _set_password(user, new_password)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # they just proved they read this inbox
    sessions.revoke_all(session, user.id)
    events.record(session, EventKind.PASSWORD_RESET, user.id)
    return user


def change_password(
    session: so.Session, user: User, current_password: str, new_password: str, *, keep_session: int | None
) -> None:
    """Change the password; every session except `keep_session` (the one asking) ends."""
    if not passwords.verify_password(user.password_hash, current_password):
        raise WrongPassword("That is not your current password.")
    _set_password(user, new_password)
    sessions.revoke_all(session, user.id, keep=keep_session)
    events.record(session, EventKind.PASSWORD_CHANGED, user.id)


def end_all_sessions(session: so.Session, user: User) -> None:
    sessions.revoke_all(session, user.id)
    events.record(session, EventKind.ALL_SESSIONS_REVOKED, user.id)


def update_profile(user: User, *, name: str, timezone: str) -> None:
    user.name = name.strip()
    user.timezone = timezone


def _email_change_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="change-email")  # type: ignore[arg-type]


def request_email_change(session: so.Session, user: User, new_email: str) -> str | None:
    """A signed token for the link mailed to `new_email`; None when that address has an account already.

    No row is written: the token names the old address too, so once the change is made it stops working.
    """
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise EmailRejected("That is already your email address.")
    if user_by_email(session, new_email) is not None:
        return None  # the caller tells that address instead, and this person sees the same answer
    return _email_change_signer().dumps({"user": user.id, "from": user.email, "to": new_email})


def change_email(session: so.Session, raw: str) -> tuple[User, str]:
    """Use an emailed change link; returns the user and their old address (to tell it)."""
    try:
        data = _email_change_signer().loads(raw, max_age=int(EMAIL_CHANGE_LIFETIME.total_seconds()))
    except SignatureExpired:
        raise TokenError("This link has expired. Ask for a new one on your profile page.") from None
    except BadSignature:
        raise TokenError("This link is not valid. Check that you copied all of it, or ask for a new one.") from None
    user = session.get(User, data["user"], with_for_update=True)
    if user is None or user.email != data["from"]:
        raise TokenError("This link has already been used, or your address changed since it was sent.")
    if user_by_email(session, data["to"]) is not None:
        raise TokenError("That address belongs to another account now. Choose a different one.")
    old_email = user.email
    user.email = data["to"]
    user.email_verified_at = utcnow()  # opening the link proved the inbox
    events.record(session, EventKind.EMAIL_CHANGED, user.id)
    return user, old_email
