"""OAuth 2.0 state every authorization-code fake keeps: codes (with PKCE), expiring access and rotating refresh tokens.

Guarded by the owning fake's clock lock; times come from that clock, so a test can
move past a token's expiry without sleeping.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

from tests.fakes import tokens
from tests.fakes.standalone import FakeClock


@dataclasses.dataclass
class Code:
    client_id: str
    redirect_uri: str
    account_id: str
    challenge: str | None


@dataclasses.dataclass
class Token:
    account_id: str
    expires_at: datetime | None
    revoked: bool = False
    issued_at: datetime | None = None


TokenCheck = Literal["ok", "expired", "invalid"]


class TokenStore:
    """Codes, access tokens and refresh tokens for one fake network."""

    def __init__(self, clock: FakeClock, *, access_lifetime: timedelta | None, rotate_refresh: bool = True) -> None:
        self.clock = clock
        self.access_lifetime = access_lifetime
        self.rotate_refresh = rotate_refresh
        self.codes: dict[str, Code] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}

    def new_code(self, client_id: str, redirect_uri: str, account_id: str, challenge: str | None = None) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = Code(client_id, redirect_uri, account_id, challenge)
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str | None = None) -> str | None:
        """The account a code was issued for, once; None for an unknown, reused or mismatched code."""
        issued = self.codes.pop(code, None)
        if issued is None or issued.client_id != client_id or issued.redirect_uri != redirect_uri:
            return None
        if issued.challenge is not None:
            digest = base64.urlsafe_b64encode(hashlib.sha256((verifier or "").encode()).digest()).decode().rstrip("=")
            if digest != issued.challenge:
                return None
        return issued.account_id

    def issue(
        self, account_id: str, *, with_refresh: bool = True, lifetime: timedelta | None = None
    ) -> tuple[str, str | None]:
        now = self.clock.now()
        life = lifetime or self.access_lifetime
        access = tokens.issue()
        self.access[access] = Token(account_id, now + life if life else None, issued_at=now)
        refresh = None
        if with_refresh:
            refresh = tokens.issue()
            self.refresh[refresh] = Token(account_id, None, issued_at=now)
        return access, refresh

    def check(self, access: str) -> tuple[TokenCheck, str | None]:
        token = self.access.get(access)
        if token is None or token.revoked:
            return "invalid", None
        if token.expires_at is not None and self.clock.now() >= token.expires_at:
            return "expired", token.account_id
        return "ok", token.account_id

    def use_refresh(self, refresh: str) -> tuple[str, str | None] | None:
        """New tokens for a live refresh token; the old refresh token dies when `rotate_refresh`."""
        token = self.refresh.get(refresh)
        if token is None or token.revoked:
            return None
        if self.rotate_refresh:
            token.revoked = True
            return self.issue(token.account_id)
        access, _ = self.issue(token.account_id, with_refresh=False)
        return access, refresh

    def expires_in(self, access: str) -> int:
        token = self.access[access]
        return int((token.expires_at - self.clock.now()).total_seconds()) if token.expires_at else 0

    def expire(self, access: str) -> None:
        self.access[access].expires_at = self.clock.now() - timedelta(seconds=1)

    def revoke(self, account_id: str) -> int:
        revoked = 0
        for token in [*self.access.values(), *self.refresh.values()]:
            if token.account_id == account_id and not token.revoked:
                token.revoked = True
                revoked += 1
        return revoked
