"""How a post will look on each of its channels: what a reviewer approves, built from what would be sent.

Each preview comes from `outbound_post`, the same object the publish job hands to the network's adapter,
so a reviewer sees the text, media, thread and first comment exactly as they will go out, with the length
counted by that network's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from publishers import capabilities
from publishers.base import Media
from publishers.counting import text_length
from saas.posts.models import PostTarget
from saas.posts.outbound import outbound_post


@dataclass(frozen=True)
class Preview:
    network: str  # as the network spells itself
    handle: str
    account: str
    text: str
    length: int
    limit: int
    media: tuple[Media, ...]
    thread: tuple[str, ...]
    first_comment: str | None  # only where the network takes one

    @property
    def too_long(self) -> bool:
        return self.length > self.limit


def preview(target: PostTarget) -> Preview:
    caps = capabilities.for_network(target.channel.network)
    post = outbound_post(target)
    return Preview(
        network=caps.display_name,
        handle=target.channel.handle,
        account=target.channel.display_name,
        text=post.text,
        length=text_length(post.text, caps),
        limit=caps.max_text_length,
        media=post.media,
        thread=tuple(part.text for part in post.thread) if caps.supports_threads else (),
        first_comment=post.first_comment if caps.supports_first_comment else None,
    )
