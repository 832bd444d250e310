"""Each network's counting rule at its limit and one over, for the texts that count differently everywhere.

Weights are written out per network (what the network's own documentation says
one unit counts as), not computed with the code under test.
"""

from __future__ import annotations

import pytest

from publishers.base import OutboundPost
from publishers.bluesky import BlueskyPublisher
from publishers.capabilities import ALL
from publishers.counting import text_length
from tests.publishers.test_counting import SandboxLike

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # ZWJ sequence: 7 code points, 25 bytes
URL = "https://example.com/a/rather/long/path/to/a/page?with=query"  # 59 characters
MENTION = "@alice@example.social"  # 21 characters; Mastodon counts "@alice"

# unit → its weight per counting rule (each unit is followed by a space, which counts 1 everywhere).
UNITS = {
    "emoji": ("\U0001f600", {"characters": 1, "graphemes": 1, "mastodon": 1, "x_weighted": 2, "threads_bytes": 4}),
    "zwj": (FAMILY, {"characters": 7, "graphemes": 1, "mastodon": 1, "x_weighted": 2, "threads_bytes": 25}),
    "cjk": ("漢字", {"characters": 2, "graphemes": 2, "mastodon": 2, "x_weighted": 4, "threads_bytes": 2}),
    "url": (URL, {"characters": 59, "graphemes": 59, "mastodon": 23, "x_weighted": 23, "threads_bytes": 59}),
    "mention": (MENTION, {"characters": 21, "graphemes": 21, "mastodon": 6, "x_weighted": 21, "threads_bytes": 21}),
}


def _text_of_length(unit: str, weight: int, limit: int) -> str:
    """Five units (each with a space after it), padded with Latin letters to exactly `limit`."""
    body = (unit + " ") * 5
    return body + "a" * (limit - 5 * (weight + 1))


@pytest.mark.parametrize("network", sorted(ALL))
@pytest.mark.parametrize("kind", sorted(UNITS))
def test_at_the_limit_passes_and_one_over_is_refused(network, kind):
    caps = ALL[network]
    unit, weights = UNITS[kind]
    at_limit = _text_of_length(unit, weights[caps.counting], caps.max_text_length)
    one_over = at_limit + "a"
    assert text_length(at_limit, caps) == caps.max_text_length
    assert text_length(one_over, caps) == caps.max_text_length + 1

    class Like(SandboxLike):
        capabilities = caps

    # validate() is what the server checks at "Schedule": it must agree (media rules aside).
    assert [p for p in Like({}).validate(OutboundPost(text=at_limit)) if "characters" in p] == []
    [problem] = [p for p in Like({}).validate(OutboundPost(text=one_over)) if "characters" in p]
    assert f"allows {caps.max_text_length} characters; this text counts as {caps.max_text_length + 1}" in problem


def test_bluesky_adapter_counts_a_zwj_family_as_one():
    text = _text_of_length(FAMILY, 1, 300)
    assert BlueskyPublisher({}).validate(OutboundPost(text=text)) == []
