"""Connect channels, keep their credentials sealed, and record their health."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from billing.lifecycle import Action
from publishers.base import Credentials, Profile
from saas import entitlements
from saas.channels.models import Channel, ChannelHealth
from saas.crypto import DecryptionError, KeyRing
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


def channels(session: so.Session) -> list[Channel]:
    return list(session.scalars(sa.select(Channel).order_by(Channel.network, sa.func.lower(Channel.handle))))


@dataclass(frozen=True)
class _SealedColumn:
    """A column holding values sealed with `keyring()`, and what each row's value is bound to."""

    model: type[Any]
    column: str
    bound_to: Callable[[Any], str]
    key: str = "id"  # the primary key, which batches follow

    def not_sealed_with(self, prefix: str) -> sa.ColumnElement[bool]:
        column = getattr(self.model, self.column)
        return sa.and_(column.is_not(None), ~column.startswith(prefix))


def _sealed_columns() -> tuple[_SealedColumn, ...]:
    from saas.channels.mastodon import app_secret_bound_to
    from saas.channels.models import MastodonApp
    from saas.identity.models import TwoFactorCredential
    from saas.identity.twofactor import secret_bound_to
    from saas.webhooks.models import WebhookEndpoint
    from saas.webhooks.service import secret_bound_to as webhook_secret_bound_to

    return (
        _SealedColumn(Channel, "credentials_sealed", _bound_to),
        _SealedColumn(MastodonApp, "client_secret_sealed", lambda row: app_secret_bound_to(row.instance_url)),
        _SealedColumn(TwoFactorCredential, "secret_sealed", lambda row: secret_bound_to(row.user_id), key="user_id"),
        # A webhook endpoint's signing secret, and the previous one while a secret change is in its grace period.
        _SealedColumn(WebhookEndpoint, "secret_sealed", webhook_secret_bound_to),
        _SealedColumn(WebhookEndpoint, "previous_secret_sealed", webhook_secret_bound_to),
    )


@dataclass
class Rotation:
    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)  # "<table> <id>": sealed with a key no longer listed


def rotate_keys(batch_size: int = 200) -> Rotation:
    """Re-seal every sealed value with the newest key, while the app keeps running. Cross-tenant by nature.

    Safe beside live traffic: every listed key still opens values, so rows not yet re-sealed
    keep working; each batch is its own short transaction and locks its rows (FOR UPDATE), so
    a token refresh racing with it waits a moment and is never overwritten by the old value.
    """
    ring = keyring()
    report = Rotation()
    for sealed in _sealed_columns():
        key = getattr(sealed.model, sealed.key)
        after = 0
        while True:
            with system_session() as session:
                rows = session.scalars(
                    sa.select(sealed.model)
                    .where(key > after, sealed.not_sealed_with(ring.newest_prefix()))
                    .order_by(key)
                    .limit(batch_size)
                    .with_for_update()
                ).all()
                for row in rows:
                    try:
                        setattr(row, sealed.column, ring.reseal(getattr(row, sealed.column), sealed.bound_to(row)))
                        report.rotated += 1
                    except DecryptionError:
                        report.unreadable.append(f"{sealed.model.__tablename__} {getattr(row, sealed.key)}")
                session.commit()
            if len(rows) < batch_size:
                break
            after = getattr(rows[-1], sealed.key)
    return report


def sealed_with_older_keys() -> int:
    """How many values the newest key did not seal: 0 means the older keys can leave ENCRYPTION_KEYS."""
    prefix = keyring().newest_prefix()
    with system_session() as session:
        return sum(
            session.scalar(sa.select(sa.func.count()).select_from(s.model).where(s.not_sealed_with(prefix))) or 0
            for s in _sealed_columns()
        )
