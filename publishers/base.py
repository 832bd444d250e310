"""The one interface every network adapter implements, and the values that cross it.

Adapters are plain objects: constructed with their network's settings (base
URLs, app credentials), given user credentials per call, returning new
credentials when they change. They never touch the database, Flask or config.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import ClassVar, Literal

CountingRule = Literal["characters", "mastodon", "graphemes", "x_weighted", "threads_bytes"]
IdempotencyMechanism = Literal["key", "record_key", "container", "duplicate_error", "readback"]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a network accepts and how it behaves. The composer and validate() read this."""

    network: str
    display_name: str
    max_text_length: int
    counting: CountingRule  # how the network counts text against max_text_length
    url_length: int | None = None  # every URL counts as this many (Mastodon 23, X 23)
    max_images: int = 4
    max_videos: int = 1
    allow_mixed_media: bool = False
    requires_media: bool = False
    max_image_bytes: int = 5 * 1024 * 1024
    max_video_bytes: int = 512 * 1024 * 1024
    supports_threads: bool = False
    supports_delete: bool = True
    publish_is_async: bool = False  # publish() may return pending → check_status()
    idempotency: IdempotencyMechanism = "readback"
    # How long the network remembers an idempotency key (None: not applicable).
    idempotency_window: timedelta | None = None
    max_concurrent_per_channel: int = 1
    max_concurrent_per_network: int = 32


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Per-channel secrets. Adapters return new ones from refresh(); the app stores them encrypted."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    extra: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:  # never print a token
        return f"Credentials(expires_at={self.expires_at!r}, extra_keys={sorted(self.extra)})"


@dataclasses.dataclass(frozen=True)
class Profile:
    remote_id: str
    handle: str
    display_name: str
    url: str | None = None


@dataclasses.dataclass(frozen=True)
class OutboundPost:
    text: str
    media_urls: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PublishResult:
    remote_id: str
    url: str | None
    published_at: datetime | None = None


class Publisher(abc.ABC):
    """One network. Subclasses set `capabilities` and implement the calls.

    `publish` is the single irreversible mutation: callers never retry it on
    `OutcomeUnknown` except with the same idempotency key inside the network's
    window. `find_published` and `profile` are read-only and safe to retry.
    """

    capabilities: ClassVar[Capabilities]

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings

    @property
    def network(self) -> str:
        return self.capabilities.network

    def validate(self, post: OutboundPost) -> list[str]:
        """Reasons the network would refuse this post, in words for the user (empty: fine)."""
        from publishers.counting import text_length

        problems = []
        length = text_length(post.text, self.capabilities)
        if length > self.capabilities.max_text_length:
            problems.append(
                f"{self.capabilities.display_name} allows {self.capabilities.max_text_length} characters; "
                f"this text counts as {length}."
            )
        if not post.text.strip() and not post.media_urls:
            problems.append("Write some text or attach media.")
        if self.capabilities.requires_media and not post.media_urls:
            problems.append(f"{self.capabilities.display_name} needs at least one image or video.")
        if len(post.media_urls) > self.capabilities.max_images:
            problems.append(f"{self.capabilities.display_name} allows at most {self.capabilities.max_images} images.")
        return problems

    @abc.abstractmethod
    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        """Create the post. Raises a `publishers.errors` class on failure."""

    @abc.abstractmethod
    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        """Read back: our post if the network has it (made at or after `since`), else None."""

    @abc.abstractmethod
    def profile(self, credentials: Credentials) -> Profile:
        """The account these credentials act for."""

    def refresh(self, credentials: Credentials) -> Credentials:
        """New credentials from a refresh token. Networks whose tokens never expire keep the default."""
        from publishers.errors import AuthRevoked

        raise AuthRevoked("This connection cannot be renewed. Reconnect the channel.")

    def delete(self, remote_id: str, credentials: Credentials) -> None:
        raise NotImplementedError(f"{self.capabilities.display_name} posts cannot be deleted from Multipost")
