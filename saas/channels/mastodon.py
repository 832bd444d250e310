"""Connecting a Mastodon account: app registration per instance, authorization code with PKCE, limits.

The flow spans two requests. `start` registers Multipost with the instance (once,
stored in `mastodon_apps`), and returns the authorization URL plus the `Pending`
values the caller keeps in the signed session cookie: `state` and the PKCE
verifier never reach the instance except as the challenge. `finish` checks the
callback's `state` against them before anything is exchanged or stored.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from publishers.http import server_origin
from publishers.mastodon import AppRegistration, MastodonPublisher
from publishers.oauth import new_pkce, new_state
from saas import safefetch
from saas.channels import service as channel_service
from saas.channels.models import Channel, MastodonApp
from saas.channels.oauth import SignInState
from saas.publishing.networks import publisher_for


class ConnectRefused(ValueError):
    """The connect attempt cannot go on; the message says why, for the person connecting."""


@dataclass(frozen=True)
class Pending(SignInState):
    """What the browser session remembers between `start` and `finish`."""

    workspace: str
    instance_url: str
    state: str
    code_verifier: str | None


def _publisher() -> MastodonPublisher:
    publisher = publisher_for("mastodon")
    assert isinstance(publisher, MastodonPublisher)
    return publisher


def app_secret_bound_to(instance_url: str) -> str:
    return f"mastodon_app:{instance_url}"


def registration(session: so.Session, instance_url: str, redirect_uri: str) -> AppRegistration:
    """Our registration with the instance, made now if there is none for this redirect URI."""
    ring = channel_service.keyring()
    row = session.scalar(sa.select(MastodonApp).where(MastodonApp.instance_url == instance_url).with_for_update())
    if row is not None and row.redirect_uri == redirect_uri:
        secret = ring.open(row.client_secret_sealed, app_secret_bound_to(instance_url)).decode()
        return AppRegistration(instance_url, row.client_id, secret)
    app = _publisher().register_app(instance_url, redirect_uri)
    row = row or MastodonApp(instance_url=instance_url)
    row.redirect_uri, row.client_id = redirect_uri, app.client_id
    row.client_secret_sealed = ring.seal(app.client_secret.encode(), app_secret_bound_to(instance_url))
    session.add(row)
    session.flush()
    return app


def start(session: so.Session, workspace: str, typed_instance: str, redirect_uri: str) -> tuple[str, Pending]:
    """The URL to send the person to, and what to remember until they come back."""
    publisher = _publisher()
    try:
        instance_url = server_origin(typed_instance, allow_http=publisher.allow_http)
        safefetch.check(instance_url, safefetch.app_policy())  # the adapter's transport checks every call too
    except (ValueError, safefetch.FetchRefused) as exc:
        raise ConnectRefused(str(exc)) from None
    app = registration(session, instance_url, redirect_uri)
    pkce = new_pkce() if publisher.supports_pkce(instance_url) else None
    pending = Pending(workspace, instance_url, new_state(), pkce.verifier if pkce else None)
    url = publisher.authorization_url(app, redirect_uri, pending.state, pkce.challenge if pkce else None)
    return url, pending


def finish(
    session: so.Session, pending: Pending | None, workspace: str, state: str, code: str, redirect_uri: str
) -> Channel:
    """Check `state`, exchange the code, read the account and the instance's limits, connect the channel."""
    if pending is None or pending.workspace != workspace or not hmac.compare_digest(pending.state, state or ""):
        raise ConnectRefused(
            "This sign-in did not start here, or it was already used, so nothing was connected. "
            "Start again from the Channels page."
        )
    if not code:
        raise ConnectRefused("Mastodon did not give permission, so nothing was connected.")
    publisher = _publisher()
    app = registration(session, pending.instance_url, redirect_uri)
    credentials = publisher.exchange_code(app, redirect_uri, code, pending.code_verifier)
    profile = publisher.profile(credentials)
    limits = publisher.instance_limits(pending.instance_url)
    channel = channel_service.connect(session, "mastodon", profile, credentials)
    channel.limits = limits
    return channel
