"""Connect channels, keep their credentials sealed, and record their health."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from billing.lifecycle import Action
from publishers.base import Credentials, Profile
from saas import entitlements
from saas.channels.models import Channel, ChannelHealth
from saas.crypto import KeyRing
from tenants.scoping import bound_tenant_id, system_session


def keyring() -> KeyRing:
    ring = current_app.extensions.get("keyring")
    if ring is None:
        ring = current_app.extensions["keyring"] = KeyRing.from_config(current_app.config["ENCRYPTION_KEYS"])
    return ring


def _bound_to(channel: Channel) -> str:
    # The tenant and the row are part of the ciphertext's associated data: a sealed value
    # copied into another row (or another tenant) will not open.
    return f"channel:{channel.tenant_id}:{channel.id}"


def credentials_payload(credentials: Credentials) -> dict[str, Any]:
    """Credentials as JSON-ready values, for sealing (never for logging)."""
    return {
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "expires_at": credentials.expires_at.isoformat() if credentials.expires_at else None,
        "extra": dict(credentials.extra),
    }


def credentials_from_payload(payload: dict[str, Any]) -> Credentials:
    expires_at = payload.get("expires_at")
    return Credentials(
        access_token=payload["access_token"],
        refresh_token=payload.get("refresh_token"),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        extra=payload.get("extra") or {},
    )


def store_credentials(channel: Channel, credentials: Credentials) -> None:
    payload = credentials_payload(credentials)
    channel.credentials_sealed = keyring().seal(json.dumps(payload).encode(), _bound_to(channel))


def load_credentials(channel: Channel) -> Credentials:
    if not channel.credentials_sealed:
        raise LookupError(f"channel {channel.id} has no credentials")
    return credentials_from_payload(json.loads(keyring().open(channel.credentials_sealed, _bound_to(channel))))


def connect(session: so.Session, network: str, profile: Profile, credentials: Credentials) -> Channel:
    """Add the account to the session's tenant, or refresh it if it is already connected."""
    channel = session.scalar(
        sa.select(Channel).where(Channel.network == network, Channel.remote_id == profile.remote_id)
    )
    if channel is None:
        # A new channel must fit the plan (reconnecting an existing one always may); LimitReached otherwise.
        entitlements.require(session, bound_tenant_id(session), Action.CONNECT_CHANNEL)
        channel = Channel(network=network, remote_id=profile.remote_id)
        session.add(channel)
    channel.handle = profile.handle
    channel.display_name = profile.display_name
    channel.profile_url = profile.url
    if channel.health is not ChannelHealth.OK:
        channel.health_changed_at = datetime.now(UTC)
    channel.health = ChannelHealth.OK
    channel.health_reason = None
    session.flush()  # the id is part of the sealing
    store_credentials(channel, credentials)
    session.flush()
    return channel


def channel(session: so.Session, channel_id: int) -> Channel:
    """One of the session's tenant's channels; LookupError if it has none with that id."""
    found = session.scalar(sa.select(Channel).where(Channel.id == channel_id))
    if found is None:
        raise LookupError(channel_id)
    return found


def existing_ids(session: so.Session, channel_ids: list[int]) -> set[int]:
    """Which of these ids are channels of the session's workspace."""
    return set(session.scalars(sa.select(Channel.id).where(Channel.id.in_(channel_ids)))) if channel_ids else set()


def channels(session: so.Session) -> list[Channel]:
    return list(session.scalars(sa.select(Channel).order_by(Channel.network, sa.func.lower(Channel.handle))))


def rotate_keys() -> int:
    """Re-seal every channel's credentials with the newest key. Cross-tenant by nature."""
    ring = keyring()
    rotated = 0
    with system_session() as session:
        for channel in session.scalars(sa.select(Channel).where(Channel.credentials_sealed.is_not(None))):
            assert channel.credentials_sealed is not None
            if ring.needs_rotation(channel.credentials_sealed):
                store_credentials(channel, load_credentials(channel))
                rotated += 1
        session.commit()
    return rotated
