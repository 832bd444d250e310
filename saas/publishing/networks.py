"""Adapters built from this app's configuration, one per network per process."""

from __future__ import annotations

import threading

from flask import current_app

import publishers
from publishers.base import Publisher

_lock = threading.Lock()


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
            cache[network] = publishers.publisher_class(network)(settings_for(network))
        return cache[network]
