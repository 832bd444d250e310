"""A post as one channel's adapter receives it: the only place a Post and its target become an OutboundPost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publishers.base import Media, OutboundPost, ThreadPart, Visibility
from saas.media import links
from saas.posts.models import PostTarget

VISIBILITIES: tuple[Visibility, ...] = ("public", "unlisted", "private", "direct")


def outbound_post(target: PostTarget) -> OutboundPost:
    """The target's text (its override, else the post's) with the post's media, thread and options."""
    post = target.post
    return OutboundPost(
        text=target.text,
        media_urls=tuple(post.media_urls or ()),
        media=_media(target.media_override if target.media_override is not None else post.media, target.tenant_id),
        thread=tuple(
            ThreadPart(str(part.get("text") or ""), _media(part.get("media"), target.tenant_id))
            for part in post.thread or ()
        ),
        content_warning=post.content_warning or None,
        visibility=_visibility(post.visibility),
        language=post.language or None,
        # Every adapter gets it; only those whose network takes a first comment send it (the others have threads).
        first_comment=post.first_comment or None,
    )


def _media(items: Any, tenant_id: int) -> tuple[Media, ...]:
    return tuple(
        Media(
            source=str(item["source"]),
            mime_type=str(item.get("mime_type") or ""),
            alt=str(item.get("alt") or ""),
            # Library files also get a signed address on our site, for networks that download media.
            public_url=links.public_url(tenant_id, int(item["media_id"])) if item.get("media_id") else None,
        )
        for item in items or ()
        if isinstance(item, Mapping) and item.get("source")
    )


def _visibility(value: str | None) -> Visibility | None:
    return next((v for v in VISIBILITIES if v == value), None)
