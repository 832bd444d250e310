"""Connecting X, LinkedIn, Facebook Pages, Instagram and Threads: one authorization-code flow for all five.

The flow spans up to three requests:
1. `start`: the authorization URL (with `state`, and PKCE where the network takes it) and the
   `Pending` values the signed session cookie keeps; the PKCE verifier never leaves us.
2. `finish`: the callback's `state` is checked against them before anything is exchanged; the code
   is traded for the login's credentials and the adapter lists every target the login may publish
   to (the member and their organizations, the person's Pages, their Instagram accounts).
3. When there is more than one, the person picks (`offer` / `take`): the candidates wait in Redis
   for ten minutes, sealed like channel credentials (tokens are never put in the cookie).

Connecting an account that is already a channel renews it in place (same row, same scheduled
posts), which is what "Reconnect" does.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Self

import sqlalchemy.orm as so

from publishers.base import ConnectableAccount, OAuthPublisher, Profile
from publishers.errors import ConnectFailed
from publishers.oauth import new_pkce, new_state
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.crypto import DecryptionError
from saas.extensions import redis_client
from saas.publishing.networks import publisher_for

NETWORKS = {
    "x": "X",
    "linkedin": "LinkedIn",
    "facebook_pages": "Facebook Pages",
    "instagram": "Instagram",
    "threads": "Threads",
}
PICK_SECONDS = 600


class ConnectRefused(ValueError):
    """The connect attempt cannot go on; the message says why, for the person connecting."""


class SignInState:
    """A sign-in in progress, kept in the browser session between `start` and `finish` (any network)."""

    def to_session(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_session(cls, raw: Any) -> Self | None:
        try:
            return cls(**raw) if isinstance(raw, dict) else None
        except TypeError:
            return None


@dataclass(frozen=True)
class Pending(SignInState):
    """What the browser session remembers between `start` and `finish`."""

    workspace: str
    network: str
    state: str
    code_verifier: str | None


def publisher(network: str) -> OAuthPublisher:
    if network not in NETWORKS:
        raise ConnectRefused("Multipost does not connect that network.")
    adapter = publisher_for(network)
    assert isinstance(adapter, OAuthPublisher)
    return adapter


def start(workspace: str, network: str, redirect_uri: str) -> tuple[str, Pending]:
    """The URL to send the person to, and what to remember until they come back."""
    adapter = publisher(network)
    pkce = new_pkce() if adapter.uses_pkce else None
    pending = Pending(workspace, network, new_state(), pkce.verifier if pkce else None)
    return adapter.authorization_url(redirect_uri, pending.state, pkce.challenge if pkce else None), pending


def finish(
    pending: Pending | None, workspace: str, state: str, code: str, redirect_uri: str
) -> list[ConnectableAccount]:
    """Check `state`, exchange the code, and list what this login may publish to."""
    if pending is None or pending.workspace != workspace or not hmac.compare_digest(pending.state, state or ""):
        raise ConnectRefused(
            "This sign-in did not start here, or it was already used, so nothing was connected. "
            "Start again from the Channels page."
        )
    name = NETWORKS.get(pending.network, pending.network)
    if not code:
        raise ConnectRefused(f"{name} did not give permission, so nothing was connected.")
    adapter = publisher(pending.network)
    accounts = adapter.accounts(adapter.exchange_code(redirect_uri, code, pending.code_verifier))
    if not accounts:
        raise ConnectFailed(f"This {name} login has nothing Multipost can publish to (no Pages or business accounts).")
    return accounts


def connect(session: so.Session, network: str, account: ConnectableAccount) -> Channel:
    return channel_service.connect(session, network, account.profile, account.credentials)


# -- the picker --------------------------------------------------------------------------------------------------


def _bound_to(workspace: str, pick_id: str) -> str:
    return f"channel_pick:{workspace}:{pick_id}"


def offer(workspace: str, network: str, accounts: list[ConnectableAccount]) -> str:
    """Keep the candidates (sealed, ten minutes) for the picker; returns the id the session remembers."""
    pick_id = secrets.token_urlsafe(16)
    payload = {"network": network, "accounts": [_dump(account) for account in accounts]}
    sealed = channel_service.keyring().seal(json.dumps(payload).encode(), _bound_to(workspace, pick_id))
    redis_client().set(f"channel_pick:{pick_id}", sealed, ex=PICK_SECONDS)
    return pick_id


def offered(workspace: str, pick_id: str | None) -> tuple[str, list[ConnectableAccount]]:
    """The network and candidates kept for this workspace's picker; `ConnectRefused` when they are gone."""
    gone = ConnectRefused("This choice expired or was already made. Start again from the Channels page.")
    raw = redis_client().get(f"channel_pick:{pick_id}") if pick_id else None
    if raw is None:
        raise gone
    sealed = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        # Bound to the workspace that started the sign-in: another workspace's URL cannot open it.
        payload = json.loads(channel_service.keyring().open(sealed, _bound_to(workspace, str(pick_id))))
    except DecryptionError:
        raise gone from None
    return str(payload["network"]), [_load(item) for item in payload["accounts"]]


def take(session: so.Session, workspace: str, pick_id: str | None, chosen: list[str]) -> list[Channel]:
    """Connect the chosen candidates (by remote id), then forget the offer."""
    network, accounts = offered(workspace, pick_id)
    picked = [account for account in accounts if account.profile.remote_id in set(chosen)]
    if not picked:
        raise ConnectRefused("Choose at least one account to connect.")
    channels = [connect(session, network, account) for account in picked]
    redis_client().delete(f"channel_pick:{pick_id}")
    return channels


def _dump(account: ConnectableAccount) -> dict[str, Any]:
    credentials = channel_service.credentials_payload(account.credentials)
    return {"profile": asdict(account.profile), "kind": account.kind, "credentials": credentials}


def _load(item: dict[str, Any]) -> ConnectableAccount:
    credentials = channel_service.credentials_from_payload(item["credentials"])
    return ConnectableAccount(Profile(**item["profile"]), credentials, str(item.get("kind") or "account"))
