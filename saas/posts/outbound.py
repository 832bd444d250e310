"""A post as one channel's adapter receives it: the only place a Post and its target become an OutboundPost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publishers.base import Media, OutboundPost, ThreadPart, Visibility
from saas.posts.models import PostTarget

VISIBILITIES: tuple[Visibility, ...] = ("public", "unlisted", "private", "direct")


def outbound_post(target: PostTarget) -> OutboundPost:
    """The target's text (its override, else the post's) with the post's media, thread and options."""
    post = target.post
    return OutboundPost(
        text=target.text,
        media_urls=tuple(post.media_urls or ()),
        media=_media(target.media_override if target.media_override is not None else post.media),
        thread=tuple(ThreadPart(str(part.get("text") or ""), _media(part.get("media"))) for part in post.thread or ()),
        content_warning=post.content_warning or None,
        visibility=_visibility(post.visibility),
        language=post.language or None,
    )


def _media(items: Any) -> tuple[Media, ...]:
    return tuple(
        Media(source=str(item["source"]), mime_type=str(item.get("mime_type") or ""), alt=str(item.get("alt") or ""))
        for item in items or ()
        if isinstance(item, Mapping) and item.get("source")
    )


def _visibility(value: str | None) -> Visibility | None:
    return next((v for v in VISIBILITIES if v == value), None)
