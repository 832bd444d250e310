"""Text counting per network, and validate() refusing what a network would refuse."""

from __future__ import annotations

from datetime import datetime

import pytest

from publishers.base import Credentials, OutboundPost, Profile, Publisher, PublishResult
from publishers.capabilities import ALL, BLUESKY, INSTAGRAM, MASTODON, SANDBOX, THREADS, X, for_network
from publishers.counting import text_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦: 7 code points, 25 UTF-8 bytes
FLAG_FR = "\U0001f1eb\U0001f1f7"  # 🇫🇷: two regional indicators, 8 bytes
GRINNING = "\U0001f600"  # 😀: 4 bytes
E_ACUTE_DECOMPOSED = "e\u0301"  # é as e + combining acute: 2 code points, 1 grapheme


class SandboxLike(Publisher):
    """The smallest concrete publisher: only validate() is under test."""

    capabilities = SANDBOX

    def publish(self, post: OutboundPost, credentials: Credentials, idempotency_key: str) -> PublishResult:
        raise NotImplementedError

    def find_published(
        self, post: OutboundPost, credentials: Credentials, idempotency_key: str, since: datetime
    ) -> PublishResult | None:
        raise NotImplementedError

    def profile(self, credentials: Credentials) -> Profile:
        raise NotImplementedError


class InstagramLike(SandboxLike):
    capabilities = INSTAGRAM


class MastodonLike(SandboxLike):
    capabilities = MASTODON


# Plain characters


def test_characters_count_code_points() -> None:
    assert text_length("hello", SANDBOX) == 5
    assert text_length(E_ACUTE_DECOMPOSED, SANDBOX) == 2
    assert text_length(FAMILY, SANDBOX) == 7


def test_empty_text_counts_zero_everywhere() -> None:
    assert {name: text_length("", caps) for name, caps in ALL.items()} == dict.fromkeys(ALL, 0)


# Mastodon


def test_mastodon_url_counts_23_regardless_of_length() -> None:
    short = "https://a.io"
    long = "https://example.com/" + "a" * 300
    assert text_length(short, MASTODON) == 23
    assert text_length(long, MASTODON) == 23
    assert text_length(f"read {long} now", MASTODON) == len("read ") + 23 + len(" now")


def test_mastodon_every_url_counts_23() -> None:
    assert text_length("http://a.io/x https://b.io/" + "y" * 50, MASTODON) == 23 + 1 + 23


def test_mastodon_sentence_punctuation_after_url_is_not_part_of_it() -> None:
    assert text_length("see https://example.com/page.", MASTODON) == len("see ") + 23 + 1


def test_mastodon_remote_mention_domain_not_counted() -> None:
    assert text_length("hi @alice@example.social", MASTODON) == len("hi @alice")
    assert text_length("@bob@mastodon.online and @carol@a.b.c", MASTODON) == len("@bob and @carol")


def test_mastodon_local_mention_and_email_count_in_full() -> None:
    assert text_length("hi @alice", MASTODON) == len("hi @alice")
    assert text_length("mail bob@example.com", MASTODON) == len("mail bob@example.com")


def test_mastodon_counts_an_emoji_sequence_once() -> None:
    # Mastodon's StatusLengthValidator counts grapheme clusters.
    assert text_length(f"a{FAMILY}", MASTODON) == 2


def test_mastodon_long_url_does_not_make_a_short_post_too_long() -> None:
    post = OutboundPost(text="x" * 470 + " https://example.com/" + "p" * 600)
    assert MastodonLike({}).validate(post) == []


# Bluesky


def test_bluesky_family_emoji_counts_one() -> None:
    assert text_length(FAMILY, BLUESKY) == 1


def test_bluesky_counts_graphemes_not_code_points() -> None:
    assert text_length(f"{E_ACUTE_DECOMPOSED}{FLAG_FR}ok", BLUESKY) == 4


# X (values from twitter-text's weighting: Latin 1, CJK 2, emoji 2, URL 23)


def test_x_url_weighs_23_regardless_of_length() -> None:
    assert text_length("https://example.com/" + "a" * 200, X) == 23
    assert text_length("hello https://example.com", X) == len("hello ") + 23


def test_x_cjk_character_weighs_two() -> None:
    assert text_length("日本語", X) == 6


def test_x_emoji_weighs_two_even_as_a_sequence() -> None:
    assert text_length(GRINNING, X) == 2
    assert text_length(FAMILY, X) == 2


def test_x_latin_weighs_one() -> None:
    assert text_length("hello, world!", X) == 13


# Threads


def test_threads_emoji_counts_its_utf8_bytes() -> None:
    assert text_length(GRINNING, THREADS) == 4
    assert text_length(FAMILY, THREADS) == 25
    assert text_length(FLAG_FR, THREADS) == 8


def test_threads_other_text_counts_one_per_grapheme() -> None:
    assert text_length(f"hi {E_ACUTE_DECOMPOSED}日本", THREADS) == 6
    assert text_length(f"hi {GRINNING}", THREADS) == 3 + 4


# validate()


def test_validate_reports_over_length_text_with_both_numbers() -> None:
    problems = SandboxLike({}).validate(OutboundPost(text="a" * 501))
    assert problems == ["Sandbox allows 500 characters; this text counts as 501."]


def test_validate_accepts_text_at_the_limit() -> None:
    assert SandboxLike({}).validate(OutboundPost(text="a" * 500)) == []


def test_validate_requires_media_where_the_network_does() -> None:
    assert InstagramLike({}).validate(OutboundPost(text="caption")) == ["Instagram needs at least one image or video."]


# Capabilities registry


def test_registry_is_keyed_by_network_name() -> None:
    assert set(ALL) == {"mastodon", "bluesky", "x", "linkedin", "facebook_pages", "instagram", "threads", "sandbox"}
    assert all(name == caps.network for name, caps in ALL.items())
    assert for_network("bluesky") is BLUESKY


def test_for_network_unknown_name_raises_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"No network called 'myspace'.*mastodon"):
        for_network("myspace")
