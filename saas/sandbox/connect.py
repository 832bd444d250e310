"""Connecting a workspace to the Sandbox network (its stand-in for an OAuth connect flow)."""

from __future__ import annotations

import sqlalchemy.orm as so
from flask import current_app

from publishers.base import Credentials, Profile
from saas.channels import service as channel_service
from saas.channels.models import Channel, ChannelHealth
from saas.sandbox import service
from saas.sandbox.models import SandboxAccount
from saas.sandbox.service import Tokens
from tenants.service import slugify, utcnow


def _credentials(tokens: Tokens) -> Credentials:
    return Credentials(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=tokens.expires_at
    )


def connect_new_account(session: so.Session, display_name: str) -> Channel:
    """Create a Sandbox account named after the workspace and connect it to the session's tenant."""
    handle = slugify(display_name).replace("-", "")[:30] or "account"
    account, tokens = service.create_account(session, handle, display_name)
    base = current_app.config["SANDBOX_BASE_URL"]
    profile = Profile(
        remote_id=account.id, handle=account.handle, display_name=account.display_name, url=f"{base}/@{account.handle}"
    )
    return channel_service.connect(session, "sandbox", profile, _credentials(tokens))


def reconnect(session: so.Session, channel: Channel) -> None:
    """Issue fresh tokens for the channel's Sandbox account and mark the channel healthy."""
    account = session.get(SandboxAccount, channel.remote_id)
    if account is None:
        raise LookupError("the Sandbox account no longer exists")
    channel_service.store_credentials(channel, _credentials(service.reissue(session, account)))
    channel.health = ChannelHealth.OK
    channel.health_reason = None
    channel.health_changed_at = utcnow()
