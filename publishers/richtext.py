"""Bluesky rich text: the facets (links, mentions, hashtags) a client must compute itself.

The server detects nothing: a link, mention or tag is only a link, mention or
tag if the record carries a facet for it. Facet indices are UTF-8 BYTE offsets
(start inclusive, end exclusive), never Python string indices: after an emoji
or any non-ASCII text the two differ, and using the wrong one shifts every link
after it (networks.md §2.2).

Detection follows the patterns of Bluesky's own RichText (mentions need a
dotted handle; a tag is `#` plus at least one non-digit, non-punctuation
character, trailing punctuation dropped, at most 64 graphemes). Links are the
same http(s) URLs the character counters treat as links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import regex

from publishers.counting import find_urls

_MENTION = regex.compile(r"(?:^|(?<=[\s(]))@([a-zA-Z0-9.-]+)\b")
_HANDLE = regex.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_INVISIBLE = r"\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2"
_TAG = regex.compile(rf"(?:^|(?<=\s))[#＃]((?!\ufe0f)[^\s{_INVISIBLE}]*[^\d\s\p{{P}}{_INVISIBLE}]+[^\s{_INVISIBLE}]*)")
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
_GRAPHEME = regex.compile(r"\X")
MAX_TAG_GRAPHEMES = 64

Resolver = Callable[[str], str | None]  # handle → DID, or None when it does not resolve


def byte_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of code-point `index` in `text`."""
    return len(text[:index].encode("utf-8"))


def _facet(text: str, start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    return {"index": {"byteStart": byte_offset(text, start), "byteEnd": byte_offset(text, end)}, "features": [feature]}


def facets(text: str, resolve_handle: Resolver) -> list[dict[str, Any]]:
    """The facets for `text`, in text order and never overlapping. Mentions that do not resolve are left plain."""
    found: list[tuple[int, int, dict[str, Any]]] = []
    for start, end, url in find_urls(text):
        found.append((start, end, {"$type": "app.bsky.richtext.facet#link", "uri": url}))
    for match in _MENTION.finditer(text):
        handle = match.group(1).rstrip(".")
        if not _HANDLE.match(handle):
            continue
        did = resolve_handle(handle.lower())
        if did:
            end = match.start(1) + len(handle)
            found.append((match.start(), end, {"$type": "app.bsky.richtext.facet#mention", "did": did}))
    for match in _TAG.finditer(text):
        tag = _TRAILING_PUNCTUATION.sub("", match.group(1))
        if not tag or len(_GRAPHEME.findall(tag)) > MAX_TAG_GRAPHEMES:
            continue
        found.append((match.start(), match.start(1) + len(tag), {"$type": "app.bsky.richtext.facet#tag", "tag": tag}))
    found.sort(key=lambda item: item[0])
    result, taken_until = [], -1
    for start, end, feature in found:
        if start < taken_until:  # inside a URL (e.g. "#fragment" or "@" in a path): the link wins
            continue
        result.append(_facet(text, start, end, feature))
        taken_until = end
    return result


def first_link(text: str) -> str | None:
    """The first URL in the text: the one a link card is made for."""
    urls = find_urls(text)
    return urls[0][2] if urls else None
