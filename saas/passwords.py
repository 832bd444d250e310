"""Password hashing (argon2id) and the rules a new password must meet."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 128  # long enough for any passphrase, short enough that hashing stays cheap

# argon2-cffi's defaults are RFC 9106's low-memory profile (t=3, m=64 MiB, p=4),
# above ASVS 5.0's minimum for argon2id.
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a miss costs as much as a hit and response
    time does not reveal which addresses have accounts. Made on first use, not at import."""
    return _hasher.hash("not-a-real-password-only-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# The hash of an account made for a reviewer who acts only from emailed links: no password matches it
# (a password reset sets one, if they ever want to log in).
NO_PASSWORD = "!none"


def verify_password(password_hash: str | None, password: str) -> bool:
    if password_hash == NO_PASSWORD:
        password_hash = None  # checked against the dummy hash: as slow as a real miss
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords from real leaks.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why this password may not be used, in words for the user; None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        return "This password is too common and easy to guess. Choose another."
    personal = {email.lower(), email.lower().split("@")[0], name.lower().replace(" ", "")} - {""}
    if lowered in personal:
        return "Don't use your email address or name as your password."
    return None
