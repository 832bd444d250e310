"""The one place that decides whether a target may go out now.

Called by the dispatcher for every claimed target. Billing and approvals add
their rules here; nothing else decides.
"""

from __future__ import annotations

from saas.channels.models import ChannelHealth
from saas.posts.models import PostTarget


def may_publish(target: PostTarget) -> str | None:
    """None when the target may be published; otherwise why not, in words for the user."""
    channel = target.channel
    if channel.health is ChannelHealth.NEEDS_RECONNECT:
        return f"{channel.display_name} (@{channel.handle}) needs to be reconnected before it can publish."
    if channel.health is ChannelHealth.DISABLED:
        return f"{channel.display_name} (@{channel.handle}) is switched off."
    return None
