"""The composer's live counter: each channel's text measured by its network's own rule (publishers.counting).

The browser asks here instead of re-implementing the rules in JavaScript, so the
counter and the server-side check can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from publishers.counting import text_length
from saas.channels.models import Channel
from saas.publishing.networks import publisher_for


def channel_counts(
    session: so.Session, channel_ids: list[int], text: str, overrides: Mapping[int, str]
) -> list[dict[str, Any]]:
    """One entry per chosen channel of this workspace: its length, limit and whether it is over."""
    if not channel_ids:
        return []
    channels = session.scalars(sa.select(Channel).where(Channel.id.in_(channel_ids)).order_by(Channel.id))
    counts = []
    for channel in channels:
        caps = publisher_for(channel.network).capabilities_for(channel.limits)
        own = overrides.get(channel.id)
        length = text_length((own if own is not None else text).strip(), caps)
        counts.append(
            {
                "channel_id": channel.id,
                "handle": channel.handle,
                "network": caps.display_name,
                "length": length,
                "limit": caps.max_text_length,
                "over": length > caps.max_text_length,
                "override": own is not None,
                "supports_threads": caps.supports_threads,
            }
        )
    return counts
