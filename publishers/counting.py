"""How long a text is by each network's own rule, so validate() refuses what the network would.

Every rule errs towards counting more, never less: a post we let through must
not be refused by the network hours later, when nobody is watching.
"""

from __future__ import annotations

from collections.abc import Callable

import regex
from twitter_text import parse_tweet

from publishers.base import Capabilities, CountingRule

_GRAPHEME = regex.compile(r"\X")

# http(s) URLs up to the next whitespace, without trailing punctuation that ends the sentence rather than the
# URL ("see https://example.com."). Mastodon's own extractor is stricter (it checks TLDs), so this may count a
# few more URLs as 23 than the server does; it never counts a long URL at its full length.
_URL = regex.compile(r"""https?://[^\s<>"]*[^\s<>"'.,;:!?)\]}]""", regex.IGNORECASE)

# A remote mention `@alice@example.social` counts as `@alice` (Mastodon's Account::MENTION_RE).
_REMOTE_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w",
    regex.IGNORECASE,
)

# A grapheme cluster is an emoji if it holds a pictograph, a flag (regional indicator pair) or a keycap (1️⃣):
# flags and keycaps have no Extended_Pictographic code point but are emoji all the same. This also catches
# ©, ® and ™ (pictographic in Unicode), which then count as 2-3: over-counting is the safe direction.
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")


def find_urls(text: str) -> list[tuple[int, int, str]]:
    """Each http(s) URL in the text as (start, end, url), in code-point indices: the URLs networks count as links."""
    return [(m.start(), m.end(), m.group()) for m in _URL.finditer(text)]


def text_length(text: str, capabilities: Capabilities) -> int:
    """How many of `capabilities.max_text_length` this text uses, counted the way the network counts."""
    return _RULES[capabilities.counting](text, capabilities)


def _characters(text: str, capabilities: Capabilities) -> int:
    """Code points: what most APIs mean by "characters"."""
    return len(text)


def _graphemes(text: str, capabilities: Capabilities) -> int:
    """What a reader sees as one character (Bluesky): a family emoji or a flag counts 1."""
    return len(_GRAPHEME.findall(text))


def _mastodon(text: str, capabilities: Capabilities) -> int:
    """Mastodon: each URL counts `url_length`, a remote mention only its `@user` part.

    The rest counts in grapheme clusters, as Mastodon's StatusLengthValidator does
    (`each_grapheme_cluster.size`), so an emoji sequence counts 1, not its code points.
    """
    if capabilities.url_length is not None:
        text = _URL.sub("x" * capabilities.url_length, text)
    text = _REMOTE_MENTION.sub(r"@\1", text)
    return _graphemes(text, capabilities)


def _x_weighted(text: str, capabilities: Capabilities) -> int:
    """X: twitter-text's weighted length (URLs 23, CJK and emoji 2, Latin 1), the count X itself uses."""
    return int(parse_tweet(text).weightedLength)


def _threads_bytes(text: str, capabilities: Capabilities) -> int:
    """Threads: one per grapheme cluster, except that an emoji counts its UTF-8 bytes (networks.md §7.3)."""
    return sum(len(cluster.encode("utf-8")) if _EMOJI.search(cluster) else 1 for cluster in _GRAPHEME.findall(text))


_RULES: dict[CountingRule, Callable[[str, Capabilities], int]] = {
    "characters": _characters,
    "mastodon": _mastodon,
    "graphemes": _graphemes,
    "x_weighted": _x_weighted,
    "threads_bytes": _threads_bytes,
}
