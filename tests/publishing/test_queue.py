"""Posting slots: "Add to queue" takes each channel's next free slot; shuffle; pause holds posts until resumed."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from saas.posts import queue
from saas.posts.models import Post, PostTarget, TargetState
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def studio(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    main = pipeline.connect(tenant, "bluebell")
    second = pipeline.connect(tenant, "bluebellcafe")
    client.log_in(owner.email, PASSWORD)
    return tenant, main, second


def add_slot(client, tenant, channel, weekday, at):
    page = f"/w/{tenant.slug}/queue"
    return client.submit(f"{page}/{channel.id}/slots", {"weekday": str(weekday), "time": at}, page=page)


def add_to_queue(client, tenant, channels, text):
    page = f"/w/{tenant.slug}/posts/new"
    fields = {"text": text, "channels": [str(c.id) for c in channels], "action": "queue"}
    return client.submit(page, fields, page=page)


def _targets(tenant):
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(PostTarget).order_by(PostTarget.post_id, PostTarget.channel_id)))


def _next(weekday: int, at: time) -> datetime:
    """The next occurrence of weekday/at in Berlin after now, in UTC (test oracle, plain zoneinfo)."""
    now = datetime.now(UTC)
    day = now.astimezone(BERLIN).date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=BERLIN)
        if day.weekday() == weekday and candidate.astimezone(UTC) > now:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


def test_add_to_queue_takes_each_channels_next_free_slot(client, studio):
    tenant, main, second = studio
    add_slot(client, tenant, main, 0, "09:00")
    add_slot(client, tenant, main, 2, "18:30")
    add_slot(client, tenant, second, 4, "07:15")
    page = client.get(f"/w/{tenant.slug}/queue").get_data(as_text=True)
    assert "Monday 09:00" in page and "Wednesday 18:30" in page and "Friday 07:15" in page

    first = add_to_queue(client, tenant, [main, second], "First in line")
    assert first.status_code == 302
    second_post = add_to_queue(client, tenant, [main], "Second in line")
    assert second_post.status_code == 302

    main_slots = sorted([_next(0, time(9)), _next(2, time(18, 30))])
    by_post = [(t.channel_id, t.scheduled_at) for t in _targets(tenant)]
    assert by_post == [(main.id, main_slots[0]), (second.id, _next(4, time(7, 15))), (main.id, main_slots[1])]


def test_add_to_queue_without_slots_says_which_channel_needs_them(client, studio):
    tenant, main, _ = studio
    response = add_to_queue(client, tenant, [main], "Nowhere to go")
    assert response.status_code == 422
    assert "@bluebell: This channel has no posting slots yet" in response.get_data(as_text=True)
    assert _targets(tenant) == []


def test_a_duplicate_slot_is_refused(client, studio):
    tenant, main, _ = studio
    add_slot(client, tenant, main, 1, "10:00")
    page = client.get(add_slot(client, tenant, main, 1, "10:00").headers["Location"]).get_data(as_text=True)
    assert "There is already a slot on Tuesday at 10:00." in page


def test_a_slot_in_the_skipped_hour_is_passed_over(app, studio):
    tenant, main, _ = studio
    with app.app_context(), tenant_session(tenant.id) as session:
        queue.add_slot(session, main.id, 6, time(2, 30))  # Sunday 02:30: skipped on the spring-forward Sunday
        session.flush()
        before_gap = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Saturday before 29 March 2026
        local, moment = queue.next_free_slot(session, main.id, "Europe/Berlin", before_gap)
    assert local == datetime(2026, 4, 5, 2, 30)  # not 29 March, when 02:30 does not exist
    assert moment == datetime(2026, 4, 5, 0, 30, tzinfo=UTC)


def test_shuffle_swaps_queued_posts_among_their_slots(client, studio):
    tenant, main, _ = studio
    for weekday in (0, 1, 2, 3):
        add_slot(client, tenant, main, weekday, "09:00")
    for n in range(4):
        add_to_queue(client, tenant, [main], f"Post {n}")
    before = {t.post_id: t.scheduled_at for t in _targets(tenant)}
    with app_context(), tenant_session(tenant.id) as session:
        moved = queue.shuffle(session, main.id, "Europe/Berlin", datetime.now(UTC), random.Random(3))
        session.commit()
    after = {t.post_id: t.scheduled_at for t in _targets(tenant)}
    assert moved == 4
    assert sorted(after.values()) == sorted(before.values()) and after != before
    with app_context(), tenant_session(tenant.id) as session:
        posts = {p.id: p.scheduled_at for p in session.scalars(sa.select(Post))}
    assert posts == after  # the calendar moves with them
    response = client.submit(f"/w/{tenant.slug}/queue/{main.id}/shuffle", page=f"/w/{tenant.slug}/queue")
    assert "Shuffled 4 queued posts." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_paused_channel_holds_its_posts_until_resumed(client, studio, pipeline, network):
    tenant, main, second = studio
    page = f"/w/{tenant.slug}/posts/new"
    client.submit(page, {"text": "Hold on", "channels": [str(main.id), str(second.id)], "publish_now": "y"}, page=page)
    client.submit(f"/w/{tenant.slug}/queue/{main.id}/pause", page=f"/w/{tenant.slug}/queue")
    pipeline.run_once()
    assert network.posts("bluebell") == [] and [p.text for p in network.posts("bluebellcafe")] == ["Hold on"]
    held = [t for t in _targets(tenant) if t.channel_id == main.id][0]
    assert held.state is TargetState.BLOCKED and "paused" in held.last_error

    client.submit(page, {"text": "Also held", "channels": str(main.id), "publish_now": "y"}, page=page)
    pipeline.run_once()
    assert network.posts("bluebell") == []

    client.submit(f"/w/{tenant.slug}/queue/{main.id}/resume", page=f"/w/{tenant.slug}/queue")
    pipeline.run_once()
    assert sorted(p.text for p in network.posts("bluebell")) == ["Also held", "Hold on"]


def test_a_channel_with_its_own_zone_uses_it_for_slots_entry_and_the_calendar(client, studio):
    tenant, main, second = studio
    page = f"/w/{tenant.slug}/queue"
    response = client.submit(f"{page}/{second.id}/timezone", {"timezone": "America/New_York"}, page=page)
    assert "@bluebellcafe now uses America/New_York" in client.get(response.headers["Location"]).get_data(as_text=True)
    add_slot(client, tenant, second, 0, "09:00")
    add_to_queue(client, tenant, [second], "Good morning, New York")
    [target] = _targets(tenant)
    new_york = zoneinfo.ZoneInfo("America/New_York")
    assert target.scheduled_at.astimezone(new_york).strftime("%a %H:%M") == "Mon 09:00"

    # Composing for that channel alone, the time is entered in its zone.
    compose = f"/w/{tenant.slug}/posts/new"
    day = (datetime.now(UTC) + timedelta(days=4)).date()
    fields = {"text": "Lunch in NY", "channels": str(second.id), "date": f"{day}", "time": "12:00"}
    client.submit(compose, fields, page=compose)
    with app_context(), tenant_session(tenant.id) as session:
        post = session.scalar(sa.select(Post).where(Post.text == "Lunch in NY"))
    assert (post.timezone, post.local_time.hour) == ("America/New_York", 12)
    assert post.scheduled_at == datetime(day.year, day.month, day.day, 12, tzinfo=new_york).astimezone(UTC)

    # With the workspace's channel too, the workspace's zone applies.
    fields = {"text": "Both", "channels": [str(main.id), str(second.id)], "date": f"{day}", "time": "12:00"}
    client.submit(compose, fields, page=compose)
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(Post.timezone).where(Post.text == "Both")) == "Europe/Berlin"

    cal = client.get(f"/w/{tenant.slug}/calendar?date={day}&channel={second.id}").get_data(as_text=True)
    assert "Times in <strong>America/New_York</strong>" in cal and "12:00</strong> Lunch in NY" in cal
    listed = client.get(f"/w/{tenant.slug}/calendar/events?from={day}&channel={second.id}").get_json()
    by_text = {p["text"]: p["local_time"] for p in listed["posts"]}
    assert listed["timezone"] == "America/New_York"
    assert by_text["Lunch in NY"] == f"{day}T12:00" and by_text["Both"] == f"{day}T06:00"  # 12:00 in Berlin


def test_an_unknown_zone_is_refused(client, studio):
    tenant, _, second = studio
    page = f"/w/{tenant.slug}/queue"
    response = client.submit(f"{page}/{second.id}/timezone", {"timezone": "Mars/Olympus"}, page=page)
    assert "Unknown time zone &#39;Mars/Olympus&#39;." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
