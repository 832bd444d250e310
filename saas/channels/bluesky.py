"""Connecting a Bluesky account: one session from a handle and an app password, kept and refreshed after.

The app password itself is never stored: only the session's tokens (sealed like
every channel's credentials), which the publish path refreshes and re-stores.
"""

from __future__ import annotations

import sqlalchemy.orm as so

from publishers.bluesky import BlueskyPublisher
from publishers.errors import ConnectFailed
from publishers.http import server_origin
from saas import safefetch
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.publishing.networks import publisher_for


def connect(session: so.Session, identifier: str, app_password: str, pds_url: str) -> Channel:
    """Log in once and connect the account (or renew it, if it is already connected). ConnectFailed if refused."""
    publisher = publisher_for("bluesky")
    assert isinstance(publisher, BlueskyPublisher)
    try:
        origin = server_origin(pds_url or default_pds(), allow_http=publisher.allow_http, example="bsky.social")
        safefetch.check(origin, safefetch.app_policy())  # the adapter's transport checks every call too
    except (ValueError, safefetch.FetchRefused) as exc:
        raise ConnectFailed(str(exc)) from None
    profile, credentials = publisher.create_session(origin, identifier, app_password)
    return channel_service.connect(session, "bluesky", profile, credentials)


def default_pds() -> str:
    return publisher_for("bluesky").settings.get("pds_url") or "https://bsky.social"
