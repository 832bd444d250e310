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
from typing import ClassVar, Literal, Protocol

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
    # The publishing account may comment on its own post right after publishing it (Facebook, Instagram, LinkedIn).
    supports_first_comment: bool = False
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


Visibility = Literal["public", "unlisted", "private", "direct"]


@dataclasses.dataclass(frozen=True)
class Media:
    """One attachment: where to read it (an http(s) URL or a local file path), its type, and its alt text."""

    source: str
    mime_type: str = ""  # empty: guessed from the source's name
    alt: str = ""
    # Where the network itself can download the file, for networks that fetch media (Meta): a
    # signed, expiring address on our site when the file lives in our media library.
    public_url: str | None = None

    @property
    def is_video(self) -> bool:
        return self.mime_type.startswith("video/")


@dataclasses.dataclass(frozen=True)
class ThreadPart:
    """A follow-up post in a thread: it replies to the part before it."""

    text: str
    media: tuple[Media, ...] = ()


@dataclasses.dataclass(frozen=True)
class OutboundPost:
    """What to publish on one channel. `media_urls` is the older, alt-less way to attach media; both count."""

    text: str
    media_urls: tuple[str, ...] = ()
    media: tuple[Media, ...] = ()
    thread: tuple[ThreadPart, ...] = ()  # follow-ups after this first part, in order
    content_warning: str | None = None
    visibility: Visibility | None = None  # None: the account's default
    language: str | None = None  # ISO 639-1
    # Commented by the account under the post once it is live; only where `supports_first_comment`.
    first_comment: str | None = None

    @property
    def attachments(self) -> tuple[Media, ...]:
        """The first part's media: `media`, then each of `media_urls` without alt text."""
        return self.media + tuple(Media(source=url) for url in self.media_urls)

    @property
    def parts(self) -> tuple[ThreadPart, ...]:
        """Every post the thread is made of, the first one included."""
        return (ThreadPart(self.text, self.attachments), *self.thread)


@dataclasses.dataclass(frozen=True)
class PublishResult:
    remote_id: str
    url: str | None
    published_at: datetime | None = None
    # Something the user should know although the post is live (its first comment failed), in their words.
    note: str | None = None


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

    def capabilities_for(self, limits: Mapping[str, int] | None) -> Capabilities:
        """The capabilities with one account's own limits applied (e.g. a Mastodon instance's `max_characters`)."""
        if not limits:
            return self.capabilities
        caps = self.capabilities
        return dataclasses.replace(
            caps,
            max_text_length=int(limits.get("max_characters", caps.max_text_length)),
            max_images=int(limits.get("max_media_attachments", caps.max_images)),
            url_length=int(limits.get("characters_reserved_per_url", caps.url_length or 0)) or caps.url_length,
        )

    def validate(self, post: OutboundPost, limits: Mapping[str, int] | None = None) -> list[str]:
        """Reasons the network would refuse this post, in words for the user (empty: fine).

        `limits` are the channel's own limits where the network has them per account or instance.
        """
        from publishers.counting import text_length

        caps = self.capabilities_for(limits)
        name = caps.display_name
        problems = []
        parts = post.parts
        for number, part in enumerate(parts, start=1):
            where = f"Part {number} of the thread: " if len(parts) > 1 else ""
            length = text_length(part.text, caps)
            if length > caps.max_text_length:
                problems.append(
                    f"{where}{name} allows {caps.max_text_length} characters; this text counts as {length}."
                )
            if not part.text.strip() and not part.media:
                problems.append(f"{where}Write some text or attach media.")
            videos = sum(1 for m in part.media if m.is_video)
            if len(part.media) - videos > caps.max_images:
                problems.append(f"{where}{name} allows at most {caps.max_images} images.")
            if videos > caps.max_videos:
                problems.append(f"{where}{name} allows at most {caps.max_videos} video.")
            if videos and len(part.media) > videos and not caps.allow_mixed_media:
                problems.append(f"{where}{name} cannot mix a video with other attachments.")
        if caps.requires_media and not post.attachments:
            problems.append(f"{name} needs at least one image or video.")
        if post.thread and not caps.supports_threads:
            problems.append(f"{name} does not take threads: publish one post.")
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


@dataclasses.dataclass(frozen=True)
class ConnectableAccount:
    """One publishable target a login grants (the member, a Page, an organization, an Instagram account)."""

    profile: Profile
    credentials: Credentials
    kind: str = "account"  # shown in the picker: "member", "organization", "Page", "Instagram account"


class OAuthPublisher(Publisher):
    """A network connected through the OAuth 2.0 authorization code flow (with PKCE where `uses_pkce`)."""

    uses_pkce: ClassVar[bool] = False

    @abc.abstractmethod
    def authorization_url(self, redirect_uri: str, state: str, code_challenge: str | None) -> str:
        """Where to send the person to approve us; they come back to `redirect_uri` with `code` and `state`."""

    @abc.abstractmethod
    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None) -> Credentials:
        """Trade the callback's code for the login's credentials. `ConnectFailed` if refused."""

    def accounts(self, credentials: Credentials) -> list[ConnectableAccount]:
        """Every target these login credentials may publish to. Networks with one account per login: that one."""
        return [ConnectableAccount(self.profile(credentials), credentials)]


class Checkpoints(Protocol):
    """Named values an adapter must find again on the next attempt (a container id), stored before it goes on.

    `put` returns only once the value is durable: the caller may crash right after.
    """

    def get(self, name: str) -> str | None: ...

    def put(self, name: str, value: str) -> None: ...


class MemoryCheckpoints:
    """Checkpoints kept in memory: for a single call, or tests."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(initial or {})

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def put(self, name: str, value: str) -> None:
        self.values[name] = value


class ResumablePublisher(OAuthPublisher):
    """A network whose publish has steps the next attempt must resume rather than redo (Meta's containers).

    The pipeline calls `publish_resumable` with checkpoints stored on the target, so a
    container created by an attempt that then died is read back, never created twice.
    """

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        return self.publish_resumable(post, credentials, idempotency_key, MemoryCheckpoints())

    @abc.abstractmethod
    def publish_resumable(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, checkpoints: Checkpoints
    ) -> PublishResult:
        """Publish, first reading back every step `checkpoints` says was already taken."""
