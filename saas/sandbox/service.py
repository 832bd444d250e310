"""The Sandbox network's own logic: accounts, tokens, posts with Idempotency-Key semantics."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.sandbox.models import SandboxAccount, SandboxIdempotencyKey, SandboxPost
from tenants.tokens import digest

MAX_TEXT = 500
MAX_MEDIA = 4
ACCESS_TOKEN_LIFETIME = timedelta(hours=24)
IDEMPOTENCY_WINDOW = timedelta(hours=1)


class SandboxError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _issue(account: SandboxAccount) -> Tokens:
    access, refresh = f"sbx_at_{secrets.token_urlsafe(24)}", f"sbx_rt_{secrets.token_urlsafe(24)}"
    account.access_token_hash = digest(access)
    account.refresh_token_hash = digest(refresh)
    account.access_expires_at = _now() + ACCESS_TOKEN_LIFETIME
    account.revoked_at = None
    return Tokens(access, refresh, account.access_expires_at)


def create_account(session: so.Session, handle: str, display_name: str) -> tuple[SandboxAccount, Tokens]:
    """A new account (the handle gets a suffix if taken) and its first tokens."""
    base, n = handle, 2
    while session.scalar(sa.select(SandboxAccount.id).where(SandboxAccount.handle == handle)):
        handle, n = f"{base}{n}", n + 1
    account = SandboxAccount(id=f"acct_{secrets.token_hex(8)}", handle=handle, display_name=display_name)
    tokens = _issue(account)
    session.add(account)
    session.flush()
    return account, tokens


def reissue(session: so.Session, account: SandboxAccount) -> Tokens:
    """New tokens for an account (what a fresh OAuth consent would give); the old ones stop working."""
    return _issue(account)


def revoke(session: so.Session, account: SandboxAccount) -> None:
    account.revoked_at = _now()


def authenticate(session: so.Session, access_token: str) -> SandboxAccount:
    account = session.scalar(sa.select(SandboxAccount).where(SandboxAccount.access_token_hash == digest(access_token)))
    if account is None or account.revoked_at is not None:
        raise SandboxError(401, "token_revoked")
    if account.access_expires_at <= _now():
        raise SandboxError(401, "token_expired")
    return account


def refresh(session: so.Session, refresh_token: str) -> Tokens:
    account = session.scalar(
        sa.select(SandboxAccount).where(SandboxAccount.refresh_token_hash == digest(refresh_token)).with_for_update()
    )
    if account is None or account.revoked_at is not None:
        raise SandboxError(400, "invalid_grant")
    return _issue(account)


def create_post(
    session: so.Session, account: SandboxAccount, text: str, media_urls: list[str], idempotency_key: str | None
) -> tuple[SandboxPost, bool]:
    """Create a post, or return the one this Idempotency-Key already made. Returns (post, created)."""
    if len(text) > MAX_TEXT:
        raise SandboxError(422, f"Text is longer than {MAX_TEXT} characters")
    if not text.strip() and not media_urls:
        raise SandboxError(422, "Text can't be blank")
    if len(media_urls) > MAX_MEDIA:
        raise SandboxError(422, f"At most {MAX_MEDIA} media attachments")
    if idempotency_key:
        if len(idempotency_key) > 128:
            raise SandboxError(422, "Idempotency-Key is too long")
        # Serialise requests with the same key, as Mastodon does with a lock around create.
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{account.id}:{idempotency_key}"))))
        known = session.get(SandboxIdempotencyKey, (account.id, idempotency_key))
        if known is not None and known.created_at > _now() - IDEMPOTENCY_WINDOW:
            post = session.get(SandboxPost, known.post_id)
            if post is not None:
                return post, False
    post = SandboxPost(
        id=f"post_{secrets.token_hex(8)}", account_id=account.id, text=text, media_urls=media_urls, created_at=_now()
    )
    session.add(post)
    session.flush()
    if idempotency_key:
        session.merge(
            SandboxIdempotencyKey(account_id=account.id, key=idempotency_key, post_id=post.id, created_at=_now())
        )
    return post, True


def posts_since(session: so.Session, account: SandboxAccount, since: datetime | None, limit: int) -> list[SandboxPost]:
    query = sa.select(SandboxPost).where(SandboxPost.account_id == account.id)
    if since is not None:
        query = query.where(SandboxPost.created_at >= since)
    return list(session.scalars(query.order_by(SandboxPost.created_at.desc()).limit(limit)))


def timeline(session: so.Session, handle: str, limit: int = 100) -> tuple[SandboxAccount | None, list[SandboxPost]]:
    account = session.scalar(sa.select(SandboxAccount).where(SandboxAccount.handle == handle))
    if account is None:
        return None, []
    return account, posts_since(session, account, None, limit)
