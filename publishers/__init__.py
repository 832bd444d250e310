"""One adapter per social network behind one interface.

Imports nothing from `saas`, `tenants` or `billing`, reads no configuration and
touches no database: adapters take credentials and return results.
"""

from publishers.base import Publisher
from publishers.bluesky import BlueskyPublisher
from publishers.mastodon import MastodonPublisher
from publishers.sandbox import SandboxPublisher

# The explicit registry: a network is available when its adapter is listed here.
PUBLISHERS: tuple[type[Publisher], ...] = (SandboxPublisher, MastodonPublisher, BlueskyPublisher)


def publisher_class(network: str) -> type[Publisher]:
    for cls in PUBLISHERS:
        if cls.capabilities.network == network:
            return cls
    raise KeyError(f"no publisher for network {network!r}")
