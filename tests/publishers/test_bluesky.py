"""BlueskyPublisher against FakeBluesky over real HTTP: sessions, records at chosen keys, facets, faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publishers.base import Credentials, Media, OutboundPost, ThreadPart
from publishers.bluesky import BlueskyPublisher, record_key, token_expiry
from publishers.errors import AuthExpired, AuthRevoked, ConnectFailed, InvalidPost, OutcomeUnknown, RateLimited
from publishers.richtext import byte_offset, facets
from tests.fakes.bluesky import FakeBluesky

CREATE = "/xrpc/com.atproto.repo.createRecord"
GET = "/xrpc/com.atproto.repo.getRecord"
HANDLE = "bluebell.bsky.test"
PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture
def pds() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        fake.add_account(HANDLE, PASSWORD)
        yield fake


@pytest.fixture
def publisher(pds: FakeBluesky) -> Iterator[BlueskyPublisher]:
    adapter = BlueskyPublisher({"timeout_seconds": "5", "app_url": pds.base_url})
    yield adapter
    adapter.close()


@pytest.fixture
def credentials(publisher: BlueskyPublisher, pds: FakeBluesky) -> Credentials:
    _profile, creds = publisher.create_session(pds.base_url, HANDLE, PASSWORD)
    pds.journal.clear()
    return creds


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "loaf.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 128)
    return path


def calls(pds: FakeBluesky) -> list[str]:
    return [e.path.removeprefix("/xrpc/") for e in pds.journal.entries()]


# -- sessions --------------------------------------------------------------------------------------------------------


def test_create_session_once_keeps_tokens_did_and_pds(publisher, pds):
    profile, creds = publisher.create_session(pds.base_url, "@" + HANDLE, PASSWORD)

    assert profile.handle == HANDLE and profile.remote_id.startswith("did:plc:")
    assert creds.extra == {"did": profile.remote_id, "handle": HANDLE, "pds_url": pds.base_url}
    assert creds.expires_at is not None and creds.expires_at - datetime.now(UTC) > timedelta(hours=1)
    assert creds.expires_at == token_expiry(creds.access_token)
    assert calls(pds) == ["com.atproto.server.createSession"]


def test_wrong_app_password_is_a_clear_connect_failure(publisher, pds):
    with pytest.raises(ConnectFailed, match="app password"):
        publisher.create_session(pds.base_url, HANDLE, "wrong-wrong-wrong-wrong")


def test_publishing_never_logs_in_again(publisher, pds, credentials):
    for n in range(3):
        publisher.publish(OutboundPost(f"Post {n}"), credentials, f"k{n}")
    assert "com.atproto.server.createSession" not in calls(pds)


def test_expired_token_arrives_as_400_and_means_refresh(publisher, pds, credentials):
    pds.expire_token(credentials.access_token)

    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Hello"), credentials, "k1")

    [entry] = pds.journal.entries()
    assert (entry.status, entry.path) == (400, GET)  # nothing was created
    fresh = publisher.refresh(credentials)
    assert fresh.access_token != credentials.access_token and fresh.refresh_token != credentials.refresh_token
    publisher.publish(OutboundPost("Hello"), fresh, "k1")
    assert len(pds.records()) == 1


def test_a_token_about_to_expire_is_refreshed_before_anything_is_sent(publisher, pds, credentials):
    soon = Credentials(
        credentials.access_token,
        credentials.refresh_token,
        datetime.now(UTC) + timedelta(minutes=1),
        credentials.extra,
    )
    with pytest.raises(AuthExpired):
        publisher.publish(OutboundPost("Hello"), soon, "k1")
    assert pds.journal.entries() == []


def test_revoked_app_password_means_reconnect(publisher, pds, credentials):
    pds.revoke_account(HANDLE)
    with pytest.raises(AuthRevoked):
        publisher.refresh(credentials)


# -- publishing ------------------------------------------------------------------------------------------------------


def test_publish_text_creates_one_record_at_the_key_derived_from_the_target(publisher, pds, credentials):
    result = publisher.publish(OutboundPost("Fresh loaves at 8", language="en"), credentials, "k1")

    [record] = pds.records()
    assert record.rkey == record_key("k1", 0)
    assert result.remote_id == record.uri
    assert result.url == f"{pds.base_url}/profile/{HANDLE}/post/{record.rkey}"
    assert calls(pds) == ["com.atproto.repo.getRecord", "com.atproto.repo.createRecord"]
    [create] = pds.journal.entries("POST", CREATE)
    assert create.body["rkey"] == record.rkey and create.body["repo"] == credentials.extra["did"]
    assert create.body["record"]["text"] == "Fresh loaves at 8" and create.body["record"]["langs"] == ["en"]
    assert create.response_headers["RateLimit-Policy"] == "5000;w=3600"


def test_images_are_uploaded_with_alt_text(publisher, pds, credentials, image):
    post = OutboundPost(
        "Two loaves", media=(Media(str(image), "image/jpeg", "Sourdough"), Media(str(image), alt="Rye"))
    )

    publisher.publish(post, credentials, "k1")

    assert calls(pds) == [
        "com.atproto.repo.getRecord",
        "com.atproto.repo.uploadBlob",
        "com.atproto.repo.uploadBlob",
        "com.atproto.repo.createRecord",
    ]
    [record] = pds.records()
    images = record.value["embed"]["images"]
    assert [i["alt"] for i in images] == ["Sourdough", "Rye"]
    assert images[0]["image"]["mimeType"] == "image/jpeg"


def test_an_image_over_the_blob_limit_is_refused_before_uploading(publisher, pds, credentials, tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 2_000_001)
    with pytest.raises(InvalidPost, match="larger than"):
        publisher.publish(OutboundPost("Big", media=(Media(str(big), alt="x"),)), credentials, "k1")
    assert "com.atproto.repo.uploadBlob" not in calls(pds)


def test_a_link_gets_facets_with_byte_offsets_and_a_link_card(publisher, pds, credentials):
    text = "Café ☕ menu: https://bluebell.example/menu #bread with @bluebell.bsky.test"

    publisher.publish(OutboundPost(text), credentials, "k1")

    [record] = pds.records()
    encoded = text.encode()
    spans = {
        f["features"][0]["$type"].split("#")[1]: encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode()
        for f in record.value["facets"]
    }
    assert spans == {"link": "https://bluebell.example/menu", "tag": "#bread", "mention": "@bluebell.bsky.test"}
    mention = next(f for f in record.value["facets"] if "mention" in f["features"][0]["$type"])
    assert mention["features"][0]["did"] == credentials.extra["did"]
    assert record.value["embed"]["external"]["uri"] == "https://bluebell.example/menu"


def test_three_part_thread_replies_to_root_and_parent(publisher, pds, credentials):
    post = OutboundPost("1/3 Our week", thread=(ThreadPart("2/3 Monday: rye"), ThreadPart("3/3 Friday: stollen")))

    result = publisher.publish(post, credentials, "k1")

    first, second, third = pds.records()
    assert [r.rkey for r in (first, second, third)] == [record_key("k1", n) for n in range(3)]
    assert result.remote_id == first.uri
    assert second.value["reply"] == {
        "root": {"uri": first.uri, "cid": first.cid},
        "parent": {"uri": first.uri, "cid": first.cid},
    }
    assert third.value["reply"]["root"]["uri"] == first.uri and third.value["reply"]["parent"]["uri"] == second.uri
    assert [e.path for e in pds.journal.entries("POST")] == [CREATE] * 3


def test_commit_then_drop_never_makes_a_second_record(publisher, pds, credentials):
    pds.controls.add_fault("commit_then_drop", method="POST", path=CREATE)

    with pytest.raises(OutcomeUnknown):
        publisher.publish(OutboundPost("Sticky buns"), credentials, "k1")
    found = publisher.find_published(OutboundPost("Sticky buns"), credentials, "k1", datetime.now(UTC))
    again = publisher.publish(OutboundPost("Sticky buns"), credentials, "k1")

    [record] = pds.records()
    assert found is not None and found.remote_id == again.remote_id == record.uri
    assert [e.outcome for e in pds.journal.entries("POST", CREATE)] == ["committed"]


def test_a_resumed_thread_skips_the_parts_that_exist(publisher, pds, credentials):
    post = OutboundPost("1/3", thread=(ThreadPart("2/3"), ThreadPart("3/3")))
    for _ in range(2):  # each try: the next part is created but its answer is lost
        pds.controls.add_fault("commit_then_drop", method="POST", path=CREATE)
        with pytest.raises(OutcomeUnknown):
            publisher.publish(post, credentials, "k1")
    assert publisher.find_published(post, credentials, "k1", datetime.now(UTC)) is None  # not every part yet

    result = publisher.publish(post, credentials, "k1")

    records = pds.records()
    assert [r.value["text"] for r in records] == ["1/3", "2/3", "3/3"]
    assert result.remote_id == records[0].uri
    assert records[2].value["reply"]["parent"]["uri"] == records[1].uri
    assert [e.body["rkey"] for e in pds.journal.entries("POST", CREATE)] == [record_key("k1", n) for n in range(3)]


def test_delete_removes_the_record_and_repeats_quietly(publisher, pds, credentials):
    result = publisher.publish(OutboundPost("Gone soon"), credentials, "k1")

    publisher.delete(result.remote_id, credentials)
    publisher.delete(result.remote_id, credentials)

    assert pds.records() == []
    deletes = pds.journal.entries("POST", "/xrpc/com.atproto.repo.deleteRecord")
    assert [(d.status, d.body["rkey"]) for d in deletes] == [(200, record_key("k1", 0))] * 2


def test_write_rate_limit_reports_the_epoch_reset(publisher, pds, credentials):
    pds.writes.set_limit(3, timedelta(hours=1))
    publisher.publish(OutboundPost("One"), credentials, "k1")

    with pytest.raises(RateLimited) as limited:
        publisher.publish(OutboundPost("Two"), credentials, "k2")

    assert timedelta(minutes=59) < limited.value.reset_at - datetime.now(UTC) <= timedelta(hours=1)


# -- text ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("graphemes", "fits"), [(299, True), (300, True), (301, False)])
def test_300_graphemes_counted_as_people_see_them(publisher, pds, credentials, graphemes, fits):
    family = "👨‍👩‍👧"  # one grapheme, five code points, 18 bytes
    text = "é" * (graphemes - 10) + family * 10

    assert (publisher.validate(OutboundPost(text)) == []) is fits
    if fits:
        publisher.publish(OutboundPost(text), credentials, f"k{graphemes}")
    else:
        with pytest.raises(InvalidPost, match="300 graphemes"):  # the server refuses it too
            publisher.publish(OutboundPost(text), credentials, f"k{graphemes}")


def test_facet_offsets_are_utf8_bytes_after_emoji_and_non_latin_text():
    text = "こんにちは 👋🏽 #パン https://例え.example/ü @a.b.c"
    found = facets(text, lambda handle: "did:plc:x")
    encoded = text.encode("utf-8")

    spans = [encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in found]

    assert spans == ["#パン", "https://例え.example/ü", "@a.b.c"]
    # 5 kana × 3 bytes, a space, a waving hand and its skin tone (4 + 4), a space: byte 25, code point 9.
    assert found[0]["index"]["byteStart"] == byte_offset(text, text.index("#")) == 25
    assert found[0]["features"][0]["tag"] == "パン"


def test_unresolvable_mentions_stay_plain_and_tags_drop_trailing_punctuation():
    found = facets("hi @nobody.example and #fresh! #2024", lambda handle: None)
    assert [f["features"][0] for f in found] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "fresh"}]


def test_record_keys_are_stable_tid_shaped_and_distinct_per_part():
    keys = [record_key("target-key", n) for n in range(3)]
    assert keys == [record_key("target-key", n) for n in range(3)]
    assert len(set(keys)) == 3
    assert all(len(k) == 13 and k[0] in "234567abcdefghij" for k in keys)
