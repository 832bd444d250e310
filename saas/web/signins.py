"""A network sign-in in progress: what the browser remembers meanwhile, and where the network sends it back.

Shared by the Channels page (a logged-in team member) and connect links (a client without an account):
one sign-in at a time per browser, whichever started it.
"""

from __future__ import annotations

from flask import current_app, url_for

PENDING_MASTODON = "mastodon_connect"
PENDING_OAUTH = "oauth_connect"
PICK_OAUTH = "oauth_pick"
STARTED_FROM = "connect_link"  # the connect link's token, when the sign-in was started from one


def mastodon_redirect_uri() -> str:
    return current_app.config["PUBLIC_BASE_URL"] + url_for("channel_callbacks.mastodon_callback")


def oauth_redirect_uri() -> str:
    """One redirect URI per network app, for every workspace and every connect link."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for("channel_callbacks.oauth_callback")
