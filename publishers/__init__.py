"""One adapter per social network behind one interface.

Imports nothing from `saas`, `tenants` or `billing`, reads no configuration and
touches no database: adapters take credentials and return results.
"""

from publishers.base import Publisher
from publishers.bluesky import BlueskyPublisher
from publishers.facebook import FacebookPagesPublisher
from publishers.instagram import InstagramPublisher
from publishers.linkedin import LinkedInPublisher
from publishers.mastodon import MastodonPublisher
from publishers.sandbox import SandboxPublisher
from publishers.threads import ThreadsPublisher
from publishers.x import XPublisher

# The explicit registry: a network is available when its adapter is listed here.
PUBLISHERS: tuple[type[Publisher], ...] = (
    SandboxPublisher,
    MastodonPublisher,
    BlueskyPublisher,
    XPublisher,
    LinkedInPublisher,
    FacebookPagesPublisher,
    InstagramPublisher,
    ThreadsPublisher,
)


def publisher_class(network: str) -> type[Publisher]:
    for cls in PUBLISHERS:
        if cls.capabilities.network == network:
            return cls
    raise KeyError(f"no publisher for network {network!r}")
