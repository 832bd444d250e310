"""Adapters built from this app's configuration, one per network per process."""

from __future__ import annotations

import threading

from flask import current_app

import publishers
from publishers.base import Publisher
from saas.safefetch import GuardedTransport, app_policy

_lock = threading.Lock()

# Networks whose server a person types in: every request to them goes through the address check
# (saas.safefetch), so a channel cannot point our workers at our own network.
USER_NAMED_SERVERS = frozenset({"mastodon", "bluesky"})


def settings_for(network: str) -> dict[str, str]:
    config = current_app.config
    common = {"timeout_seconds": str(config["NETWORK_TIMEOUT_SECONDS"])}
    if network == "sandbox":
        return common | {"base_url": config["SANDBOX_BASE_URL"]}
    return common | dict(config.get(f"{network.upper()}_SETTINGS") or {})


def publisher_for(network: str) -> Publisher:
    """The adapter for `network` (shared by threads: adapters keep no per-call state)."""
    cache: dict[str, Publisher] = current_app.extensions.setdefault("publishers", {})
    with _lock:
        if network not in cache:
            cls = publishers.publisher_class(network)
            if network in USER_NAMED_SERVERS:
                cache[network] = cls(settings_for(network), transport=GuardedTransport(app_policy()))  # type: ignore[call-arg]
            else:
                cache[network] = cls(settings_for(network))
        return cache[network]
