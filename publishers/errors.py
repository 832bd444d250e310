"""What can go wrong when talking to a network, sorted into the few kinds the pipeline acts on.

Every message is safe to show to a user: no tokens, no raw provider bodies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal


class PublisherError(Exception):
    """Base class. `message` is written for the person who scheduled the post."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class RateLimited(PublisherError):
    """The network asked us to wait until `reset_at` (UTC).

    `scope` says what to pause: "channel" (this account's limit) or "app" (our
    whole application key on that network).
    """

    def __init__(
        self,
        message: str,
        *,
        reset_at: datetime,
        scope: Literal["channel", "app"] = "channel",
        http_status: int | None = 429,
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.reset_at = reset_at
        self.scope = scope


class TransientError(PublisherError):
    """Failed before the network could have acted (connect refused, DNS, 502/503 on a read).

    Safe to retry with backoff: nothing was created.
    """


class OutcomeUnknown(PublisherError):
    """The request may have been acted on (timeout or 5xx after sending a mutation).

    Never retry blindly: use the network's idempotency key within its window, or
    read back, or tell a human.
    """


class AuthExpired(PublisherError):
    """The access token expired; refreshing it once may fix this."""


class AuthRevoked(PublisherError):
    """The user revoked access or the token is no longer valid: the channel must be reconnected."""


class InvalidPost(PublisherError):
    """The network refused this content for good (too long, bad media, duplicate...)."""


class DuplicatePost(InvalidPost):
    """The network refused the post as a copy of one it already has, and names it (LinkedIn's DUPLICATE_POST).

    After an attempt whose outcome is unknown this proves that attempt landed: adopt `existing_id`.
    """

    def __init__(
        self,
        message: str,
        *,
        existing_id: str,
        existing_url: str | None = None,
        existing_at: datetime | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.existing_id = existing_id
        self.existing_url = existing_url
        self.existing_at = existing_at  # when the earlier post was made, if the network says


class ConnectFailed(PublisherError):
    """Connecting an account did not work (refused login or code, unreachable server); nothing was stored."""
