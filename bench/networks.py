"""Which fake network a benchmark runs against: its process, its channels, and how it names our posts.

`publish_burst --network sandbox|mastodon|bluesky` uses these so the rest of the
benchmark stays network-agnostic: every fake offers the same control routes
(`POST /_control/accounts`, `GET /_control/summary`, the journal), and only the
create-post path and the per-post key it reports differ.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

NETWORKS = ("sandbox", "mastodon", "bluesky")

# The request that creates a post on each fake, as its journal records the path.
CREATE_PATH = {
    "sandbox": "/api/v1/posts",
    "mastodon": "/api/v1/statuses",
    "bluesky": "/xrpc/com.atproto.repo.createRecord",
}


def fake_command(network: str, latency_ms: float, mount: str) -> list[str]:
    """The `python -m ...` arguments that serve this network's fake and print its base URL."""
    module = {"sandbox": "tests.fakes.network", "mastodon": "tests.fakes.mastodon", "bluesky": "tests.fakes.bluesky"}
    command = ["-m", module[network], "--port", "0", "--latency-ms", str(latency_ms)]
    return command + (["--mount", mount] if network == "sandbox" else [])


def channel_values(network: str, base_url: str, account: dict[str, Any], handle: str, label: str) -> tuple[Any, Any]:
    """The Profile and Credentials for a channel on the fake account `POST /_control/accounts` made."""
    from publishers.base import Credentials, Profile
    from publishers.bluesky import token_expiry

    if network == "mastodon":
        host = urlsplit(base_url).netloc
        extra = {"instance_url": base_url, "account_id": account["account_id"]}
        profile = Profile(f"{account['account_id']}@{host}", f"{handle}@{host}", label)
        return profile, Credentials(account["access_token"], extra=extra)
    if network == "bluesky":
        extra = {"did": account["account_id"], "handle": account["handle"], "pds_url": base_url}
        profile = Profile(account["account_id"], account["handle"], label)
        access = account["access_token"]
        return profile, Credentials(access, account["refresh_token"], token_expiry(access), extra)
    from datetime import datetime

    expires_at = datetime.fromisoformat(account["expires_at"].replace("Z", "+00:00"))
    profile = Profile(account["account_id"], handle, label)
    return profile, Credentials(account["access_token"], account["refresh_token"], expires_at)


def fake_key(network: str, idempotency_key: str) -> str:
    """How the fake names the post a target with this key creates (its first, here only, part)."""
    if network == "mastodon":
        from publishers.mastodon import part_key

        return part_key(idempotency_key, 0)
    if network == "bluesky":
        from publishers.bluesky import record_key

        return record_key(idempotency_key, 0)
    return idempotency_key


def in_target_keys(
    network: str, keys: list[str], summary: dict[str, Any], entries: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fake's summary and journal with its per-post keys turned back into our targets' keys."""
    ours = {fake_key(network, key): key for key in keys}
    rows = [row | {"key": ours.get(row["key"], row["key"])} for row in summary.get("posts_by_key", [])]
    summary = summary | {"posts_by_key": rows}
    renamed = []
    for entry in entries:
        details = entry.get("details") or {}
        key = details.get("key") or (entry.get("headers") or {}).get("idempotency-key")
        renamed.append(entry | {"details": details | {"key": ours.get(key, key)}} if key else entry)
    return summary, renamed
