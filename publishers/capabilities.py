"""What each network accepts, one `Capabilities` per network, from /work/shared/reference/networks.md.

Section numbers (§) point into that document. Where a limit is instance- or
account-specific (Mastodon's max_characters, Instagram's quota) these are the
defaults; where sources disagree we take the smaller value, because a post the
network refuses at publish time fails with nobody watching.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from publishers.base import Capabilities

_MB = 1000 * 1000  # networks say "MB"; decimal is the smaller reading
_MIB = 1024 * 1024

MASTODON = Capabilities(
    network="mastodon",
    display_name="Mastodon",
    max_text_length=500,  # instance default; an instance may allow more (§1.3, `max_characters`)
    counting="mastodon",
    url_length=23,
    max_images=4,
    max_videos=1,
    allow_mixed_media=False,  # video/audio cannot be mixed with other attachments (§1.2)
    max_image_bytes=16 * _MIB,  # image_size_limit 16777216 (§1.2)
    max_video_bytes=103_809_024,  # video_size_limit, about 99 MiB (§1.2)
    supports_threads=True,
    idempotency="key",
    idempotency_window=timedelta(hours=1),  # "Idempotency keys are stored for up to 1 hour" (§1.4)
    max_concurrent_per_channel=2,
    max_concurrent_per_network=32,  # spread over many independent instances
)

BLUESKY = Capabilities(
    network="bluesky",
    display_name="Bluesky",
    max_text_length=300,  # graphemes; the 3000-byte cap only bites on long emoji runs (§2.3)
    counting="graphemes",
    max_images=4,
    max_videos=1,
    allow_mixed_media=False,
    max_image_bytes=2 * _MB,  # blob maxSize 2,000,000 bytes, formerly 1 MB (§2.3)
    max_video_bytes=300 * _MB,
    supports_threads=True,
    idempotency="record_key",  # a client-chosen rkey can only ever hold one record, so no window (§2.4)
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,  # bsky.social limits 3,000 requests / 5 min per IP across all accounts (§2.3)
)

X = Capabilities(
    network="x",
    display_name="X",
    max_text_length=280,  # weighted; premium accounts may post more (§3.3)
    counting="x_weighted",
    url_length=23,  # t.co
    max_images=4,
    max_videos=1,
    allow_mixed_media=False,
    max_image_bytes=5 * _MB,
    max_video_bytes=512 * _MB,
    supports_threads=True,
    idempotency="readback",  # no key: read the timeline back before any retry (§3.4)
    # One at a time per account, so a read-back never has to tell two of our in-flight posts apart.
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,  # the app-wide cap is 10,000 posts / 24 h (§3.3)
)

LINKEDIN = Capabilities(
    network="linkedin",
    display_name="LinkedIn",
    max_text_length=3000,
    counting="characters",
    max_images=20,  # multiImage takes 2..20 (upper bound unverified, §4.2)
    max_videos=1,
    allow_mixed_media=False,
    # Byte limits per asset type are unverified (§4.3): the defaults stand.
    supports_threads=False,  # follow-ups are comments, not posts (§4.2)
    supports_first_comment=True,  # POST comments as the publishing account (see publishers/comments.py)
    idempotency="duplicate_error",  # 422 DUPLICATE_POST names the earlier post's URN (§4.4)
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,  # daily per-app quota (§4.3)
)

FACEBOOK_PAGES = Capabilities(
    network="facebook_pages",
    display_name="Facebook Page",
    max_text_length=63_206,  # (§5.3)
    counting="characters",
    max_images=10,  # no documented cap on attached_media (§5.2); ours, to keep album posts sane
    max_videos=1,
    allow_mixed_media=False,
    max_image_bytes=4 * _MB,  # photos must be under 4 MB (error 1366046, §5.3)
    supports_threads=False,  # follow-ups are comments (§5.2)
    supports_first_comment=True,  # POST comments as the publishing account (see publishers/comments.py)
    idempotency="readback",  # error 506 only catches consecutive identical posts (§5.4)
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,  # Business Use Case limits per page and per app (§5.3)
)

INSTAGRAM = Capabilities(
    network="instagram",
    display_name="Instagram",
    max_text_length=2200,  # caption (§6.3, long-standing value, unverified)
    counting="characters",
    max_images=10,  # carousel 2..10 (§6.3)
    max_videos=1,
    allow_mixed_media=True,  # carousel children may be images or videos (§6.2)
    requires_media=True,
    max_image_bytes=8 * _MB,
    max_video_bytes=300 * _MB,  # sources say 1 GB or 300 MB (§6.3)
    supports_threads=False,
    supports_first_comment=True,  # POST /{ig-media-id}/comments, needs instagram_manage_comments (§6.2)
    supports_delete=False,  # the API cannot delete posts (§6.2)
    publish_is_async=True,  # container → poll status → media_publish (§6.2)
    idempotency="container",
    idempotency_window=timedelta(hours=24),  # an unpublished container EXPIREs after 24 h (§6.2)
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,
)

THREADS = Capabilities(
    network="threads",
    display_name="Threads",
    max_text_length=500,  # "characters", but each emoji counts its UTF-8 bytes (§7.3)
    counting="threads_bytes",
    max_images=20,  # carousel cap per current docs, earlier 10 (§7.2)
    max_videos=1,
    allow_mixed_media=True,  # carousel children may be images or videos (§7.2)
    max_image_bytes=8 * _MB,
    max_video_bytes=1000 * _MB,
    supports_threads=True,  # each next post replies to the previous one (§7.2)
    publish_is_async=True,  # container → poll status → threads_publish (§7.2)
    idempotency="container",
    idempotency_window=timedelta(hours=24),  # same container lifecycle as Instagram (§6.2, §7.4)
    max_concurrent_per_channel=1,
    max_concurrent_per_network=8,
)

SANDBOX = Capabilities(
    network="sandbox",
    display_name="Sandbox",
    max_text_length=500,
    counting="characters",
    max_images=4,
    max_videos=1,
    idempotency="key",
    idempotency_window=timedelta(hours=1),
    max_concurrent_per_channel=4,
)

ALL: Mapping[str, Capabilities] = MappingProxyType(
    {caps.network: caps for caps in (MASTODON, BLUESKY, X, LINKEDIN, FACEBOOK_PAGES, INSTAGRAM, THREADS, SANDBOX)}
)


def for_network(name: str) -> Capabilities:
    """The capabilities of the network called `name`; KeyError naming the known ones if there is none."""
    try:
        return ALL[name]
    except KeyError:
        raise KeyError(f"No network called {name!r}; known networks: {', '.join(sorted(ALL))}") from None
