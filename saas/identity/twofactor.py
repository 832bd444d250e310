"""Two-factor authentication: authenticator-app codes (TOTP) and single-use recovery codes.

The secret is sealed at rest bound to its user (copying it to another user's row makes it unreadable).
A code is accepted for the current 30-second step or one step either side (clocks drift), and never for
a step at or before the last accepted one: a code seen over a shoulder or in a proxy log cannot be
replayed. Recovery codes are stored as SHA-256 digests and each works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import pyotp
import segno
import sqlalchemy as sa
import sqlalchemy.orm as so

from saas import db
from saas.channels.service import keyring
from saas.identity import events
from saas.identity.events import EventKind
from saas.identity.models import RecoveryCode, TwoFactorCredential

ISSUER = "Multipost"
RECOVERY_CODE_COUNT = 10
STEP_TOLERANCE = 1  # steps either side of now
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


class WrongCode(ValueError):
    """The code was not accepted; the message says why and is safe to show."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def secret_bound_to(user_id: int) -> str:
    return f"totp:{user_id}"


def _secret(credential: TwoFactorCredential) -> str:
    return keyring().open(credential.secret_sealed, secret_bound_to(credential.user_id)).decode()


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def credential(session: so.Session, user_id: int) -> TwoFactorCredential | None:
    return session.get(TwoFactorCredential, user_id)


def without_it(session: so.Session, user_ids: list[int]) -> list[int]:
    """Those of `user_ids` who have not turned two-factor authentication on."""
    enabled = set(
        session.scalars(
            sa.select(TwoFactorCredential.user_id).where(
                TwoFactorCredential.user_id.in_(user_ids), TwoFactorCredential.enabled_at.is_not(None)
            )
        )
    )
    return [u for u in user_ids if u not in enabled]


def is_enabled(session: so.Session, user_id: int) -> bool:
    return bool(
        session.scalar(
            sa.select(TwoFactorCredential.user_id).where(
                TwoFactorCredential.user_id == user_id, TwoFactorCredential.enabled_at.is_not(None)
            )
        )
    )


def begin_setup(session: so.Session, user_id: int) -> str:
    """A new secret waiting to be confirmed with a code (replacing any earlier unconfirmed one)."""
    existing = credential(session, user_id)
    if existing is not None and existing.enabled_at is not None:
        raise WrongCode("Two-factor authentication is already on. Turn it off first to use a new authenticator.")
    secret = pyotp.random_base32()
    sealed = keyring().seal(secret.encode(), secret_bound_to(user_id))
    if existing is None:
        session.add(TwoFactorCredential(user_id=user_id, secret_sealed=sealed))
    else:
        existing.secret_sealed, existing.last_used_step = sealed, None
    session.flush()
    return secret


def pending_secret(session: so.Session, user_id: int) -> str | None:
    """The secret of a set-up that has begun but is not confirmed yet."""
    found = credential(session, user_id)
    return _secret(found) if found is not None and found.enabled_at is None else None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_code(uri: str) -> str:
    """The otpauth:// address as an SVG data URI for an <img> (the CSP allows data: images, not scripts)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def _check_totp(session: so.Session, user_id: int, code: str, now: datetime) -> TwoFactorCredential:
    """Accept `code` for the user's secret once; raise WrongCode otherwise. Locks the row against a race."""
    found = session.scalar(
        sa.select(TwoFactorCredential).where(TwoFactorCredential.user_id == user_id).with_for_update()
    )
    if found is None:
        raise WrongCode("Two-factor authentication is not set up.")
    totp = pyotp.TOTP(_secret(found))
    current = totp.timecode(now)
    for step in range(current - STEP_TOLERANCE, current + STEP_TOLERANCE + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if found.last_used_step is not None and step <= found.last_used_step:
                raise WrongCode("That code has already been used. Wait for the next one from your app.")
            found.last_used_step = step
            return found
    raise WrongCode("That code is not right. Check your authenticator app and try again.")


def confirm_setup(session: so.Session, user_id: int, code: str, now: datetime | None = None) -> list[str]:
    """Turn two-factor on once a code from the new secret checks out; returns fresh recovery codes."""
    code = _normalise(code)
    if not (len(code) == 6 and code.isdigit()):
        raise WrongCode("Enter the 6-digit code your authenticator app shows.")
    found = _check_totp(session, user_id, code, now or utcnow())
    if found.enabled_at is not None:
        raise WrongCode("Two-factor authentication is already on.")
    found.enabled_at = utcnow()
    events.record(session, EventKind.TWO_FACTOR_ENABLED, user_id)
    return _new_recovery_codes(session, user_id)


def verify(session: so.Session, user_id: int, code: str, now: datetime | None = None) -> str:
    """Check a second factor: a 6-digit app code or a recovery code. Returns "app" or "recovery".

    Raises WrongCode. The caller rate-limits attempts.
    """
    code = _normalise(code)
    if not code:
        raise WrongCode("Enter the code from your authenticator app, or a recovery code.")
    if not is_enabled(session, user_id):
        raise WrongCode("Two-factor authentication is not on for this account.")
    if len(code) == 6 and code.isdigit():
        _check_totp(session, user_id, code, now or utcnow())
        return "app"
    used = session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == _digest(code), RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if not db.rows_affected(used):
        raise WrongCode("That recovery code is not right or has already been used.")
    events.record(session, EventKind.RECOVERY_CODE_USED, user_id)
    return "recovery"


def _new_recovery_codes(session: so.Session, user_id: int) -> list[str]:
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_digest(code)) for code in codes)
    session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def regenerate_recovery_codes(session: so.Session, user_id: int) -> list[str]:
    """New recovery codes; the old ones stop working."""
    if not is_enabled(session, user_id):
        raise WrongCode("Two-factor authentication is not on.")
    codes = _new_recovery_codes(session, user_id)
    events.record(session, EventKind.RECOVERY_CODES_REGENERATED, user_id)
    return codes


def recovery_codes_left(session: so.Session, user_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def disable(session: so.Session, user_id: int) -> None:
    """Turn two-factor off: the secret and the recovery codes are deleted."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    deleted = session.execute(sa.delete(TwoFactorCredential).where(TwoFactorCredential.user_id == user_id))
    if db.rows_affected(deleted):
        events.record(session, EventKind.TWO_FACTOR_DISABLED, user_id)
