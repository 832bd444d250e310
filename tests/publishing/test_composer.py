"""The composer: per-channel text, live counts, drafts, offered times; and the post actions around it."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas.posts.models import Post, PostState, PostTarget, TargetState
from saas.posts.service import Schedule, schedule_post
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _posts(tenant):
    with app_context(), tenant_session(tenant.id) as session:
        posts = list(session.scalars(sa.select(Post).order_by(Post.id)))
        for p in posts:
            _ = p.targets
        return posts


def _next_transition(kind: str) -> datetime:
    """The next 02:30 in Berlin that is skipped ("gap") or happens twice ("fold"), as a naive wall time."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    for _ in range(730):
        local = datetime.combine(day, datetime.min.time()).replace(hour=2, minute=30)
        first, second = local.replace(tzinfo=BERLIN, fold=0), local.replace(tzinfo=BERLIN, fold=1)
        skipped = first.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) != local
        if (kind == "gap" and skipped) or (kind == "fold" and not skipped and first.utcoffset() != second.utcoffset()):
            return local
        day += timedelta(days=1)
    raise AssertionError("no daylight-saving change within two years")


@pytest.fixture
def studio(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    main = pipeline.connect(tenant, "bluebell")
    second = pipeline.connect(tenant, "bluebellcafe")
    client.log_in(owner.email, PASSWORD)
    return tenant, owner, main, second


def compose(client, tenant, page=None, **fields):
    path = page or f"/w/{tenant.slug}/posts/new"
    return client.submit(path, fields, page=path)


def in_berlin(days: int, hour: int = 9) -> datetime:
    return (
        (datetime.now(UTC) + timedelta(days=days))
        .astimezone(BERLIN)
        .replace(hour=hour, minute=0, second=0, microsecond=0, tzinfo=None)
    )


def test_two_channels_with_an_override_publish_their_own_texts(client, studio, pipeline, network):
    tenant, _, main, second = studio
    response = compose(
        client,
        tenant,
        text="Fresh bread at 7",
        channels=[str(main.id), str(second.id)],
        publish_now="y",
        **{f"override-{second.id}": "Café opens at 8 ☕"},
        tags="bread, Morning",
        notes="Ask Jo for a photo",
        first_comment="Order ahead on our site",
    )
    assert response.status_code == 302
    [post] = _posts(tenant)
    assert post.tags == ["bread", "morning"] and post.notes == "Ask Jo for a photo"
    assert {t.channel_id: t.text_override for t in post.targets} == {main.id: None, second.id: "Café opens at 8 ☕"}
    pipeline.run_once()
    assert [p.text for p in network.posts("bluebell")] == ["Fresh bread at 7"]
    assert [p.text for p in network.posts("bluebellcafe")] == ["Café opens at 8 ☕"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Own text for this channel" in page and "Ask Jo for a photo" in page


def test_an_override_over_the_limit_names_the_channel_and_the_limit_and_keeps_the_text(client, studio):
    tenant, _, main, second = studio
    long_text = "é" * 501
    response = compose(
        client,
        tenant,
        text="Short base",
        channels=[str(main.id), str(second.id)],
        publish_now="y",
        **{f"override-{second.id}": long_text},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "For @bluebellcafe: Sandbox allows 500 characters; this text counts as 501." in page
    assert long_text in page and "Short base" in page  # nothing typed is lost
    assert _posts(tenant) == []


def test_the_live_counter_counts_each_chosen_channel_by_its_rule(client, studio):
    tenant, _, main, second = studio
    other, _ = make_workspace()
    token = client.csrf_token(f"/w/{tenant.slug}/posts/new")
    response = client.post(
        f"/w/{tenant.slug}/posts/count",
        json={"text": "x" * 500, "channels": [main.id, second.id], "overrides": {str(second.id): "y" * 501}},
        headers={"X-CSRFToken": token},
    )
    counts = {c["handle"]: (c["length"], c["limit"], c["over"]) for c in response.get_json()}
    assert counts == {"bluebell": (500, 500, False), "bluebellcafe": (501, 500, True)}


def test_the_counter_knows_nothing_of_another_workspaces_channels(client, studio, pipeline):
    tenant, _, _, _ = studio
    other, _ = make_workspace()
    foreign = pipeline.connect(other, "foreign")
    token = client.csrf_token(f"/w/{tenant.slug}/posts/new")
    response = client.post(
        f"/w/{tenant.slug}/posts/count", json={"text": "hi", "channels": [foreign.id]}, headers={"X-CSRFToken": token}
    )
    assert response.get_json() == []


def test_a_draft_keeps_anything_and_publishes_nothing_until_scheduled(client, studio, pipeline, network):
    tenant, _, main, second = studio
    response = compose(client, tenant, text="", channels=[str(main.id)], action="draft")
    assert response.status_code == 302
    [draft] = _posts(tenant)
    assert (draft.state, draft.targets, draft.draft_targets) == (
        PostState.DRAFT,
        [],
        [{"channel_id": main.id, "text_override": None}],
    )
    pipeline.run_once()
    assert network.posts("bluebell") == []

    edit = f"/w/{tenant.slug}/posts/{draft.id}/edit"
    assert re.search(
        rf'value="{main.id}" id="channels-{main.id}"[^>]* checked>', client.get(edit).get_data(as_text=True)
    )
    response = compose(client, tenant, page=edit, text="Now it is written", channels=[str(main.id)], publish_now="y")
    assert response.status_code == 302
    pipeline.run_once()
    assert [p.text for p in network.posts("bluebell")] == ["Now it is written"]
    [post] = _posts(tenant)
    assert post.id == draft.id and post.state is PostState.PUBLISHED


def test_a_skipped_time_offers_valid_times_and_one_click_schedules_it(client, studio):
    tenant, _, main, _ = studio
    skipped = _next_transition("gap")
    fields = dict(text="Hello", channels=str(main.id), date=f"{skipped:%Y-%m-%d}", time="02:30")
    response = compose(client, tenant, **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "the clocks skip that hour" in page
    assert "Use 01:59 Europe/Berlin" in page and "Use 03:00 Europe/Berlin" in page
    assert _posts(tenant) == []

    response = compose(client, tenant, **fields, choice=f"{skipped:%Y-%m-%d}T03:00:00|0")
    assert response.status_code == 302
    [post] = _posts(tenant)
    assert post.local_time == skipped.replace(hour=3, minute=0)
    assert post.scheduled_at == skipped.replace(hour=1, minute=0, tzinfo=UTC)  # 03:00 CEST


def test_a_time_that_happens_twice_asks_which_one(client, studio):
    tenant, _, main, _ = studio
    doubled = _next_transition("fold")
    fields = dict(text="Hello", channels=str(main.id), date=f"{doubled:%Y-%m-%d}", time="02:30")
    page = compose(client, tenant, **fields).get_data(as_text=True)
    assert "happens twice" in page
    assert "Use 02:30 CEST (first)" in page and "Use 02:30 CET (second)" in page
    response = compose(client, tenant, **fields, choice=f"{doubled:%Y-%m-%d}T02:30:00|1")
    assert response.status_code == 302
    [post] = _posts(tenant)
    assert post.scheduled_at == doubled.replace(hour=1, tzinfo=UTC)  # 02:30 CET = 01:30 UTC


def test_a_past_time_offers_publish_now(client, studio, pipeline, network):
    tenant, _, main, _ = studio
    fields = dict(text="Late but fine", channels=str(main.id), date="2020-01-01", time="09:00")
    page = compose(client, tenant, **fields).get_data(as_text=True)
    assert "has already passed" in page and 'value="now">Publish now</button>' in page
    assert compose(client, tenant, **fields, choice="now").status_code == 302
    pipeline.run_once()
    assert [p.text for p in network.posts("bluebell")] == ["Late but fine"]


def _schedule(client, tenant, channels, text, when: datetime, **extra):
    response = compose(
        client,
        tenant,
        text=text,
        channels=[str(c.id) for c in channels],
        date=f"{when:%Y-%m-%d}",
        time=f"{when:%H:%M}",
        **extra,
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_moving_a_post_keeps_its_local_time_and_moves_its_targets(client, studio):
    tenant, _, main, second = studio
    when = in_berlin(5)
    post_id = _schedule(client, tenant, [main, second], "Move me", when)
    new_day = (when + timedelta(days=2)).date()
    response = client.post(
        f"/w/{tenant.slug}/posts/{post_id}/move",
        data={
            "csrf_token": client.csrf_token(f"/w/{tenant.slug}/calendar"),
            "date": new_day.isoformat(),
            "time": "09:00",
        },
        headers={"Accept": "application/json"},
    )
    assert response.get_json()["ok"] is True
    [post] = _posts(tenant)
    expected = datetime.combine(new_day, when.time()).replace(tzinfo=BERLIN).astimezone(UTC)
    assert post.local_time == datetime.combine(new_day, when.time())
    assert {(t.scheduled_at, t.due_at) for t in post.targets} == {(expected, expected)}


def test_moving_into_a_skipped_hour_is_refused_and_changes_nothing(client, studio):
    tenant, _, main, _ = studio
    post_id = _schedule(client, tenant, [main], "Stay", in_berlin(3))
    before = _posts(tenant)[0].scheduled_at
    skipped = _next_transition("gap")
    response = client.submit(
        f"/w/{tenant.slug}/posts/{post_id}/move",
        {"date": f"{skipped:%Y-%m-%d}", "time": "02:30"},
        page=f"/w/{tenant.slug}/calendar",
    )
    assert response.status_code == 422
    assert "the clocks skip that hour" in response.get_data(as_text=True)
    assert _posts(tenant)[0].scheduled_at == before


def test_duplicate_makes_a_draft_with_the_same_channels_and_texts(client, studio, pipeline, network):
    tenant, _, main, second = studio
    post_id = _schedule(client, tenant, [main, second], "Twice?", in_berlin(4), **{f"override-{main.id}": "Own"})
    response = client.submit(f"/w/{tenant.slug}/posts/{post_id}/duplicate", page=f"/w/{tenant.slug}/calendar")
    assert response.status_code == 302 and response.headers["Location"].endswith("/edit")
    original, copy = _posts(tenant)
    assert (copy.state, copy.text, copy.targets) == (PostState.DRAFT, "Twice?", [])
    assert copy.draft_targets == [
        {"channel_id": main.id, "text_override": "Own"},
        {"channel_id": second.id, "text_override": None},
    ]


def test_cancel_and_delete_a_post(client, studio):
    tenant, _, main, second = studio
    post_id = _schedule(client, tenant, [main, second], "Never mind", in_berlin(4))
    detail = client.get(f"/w/{tenant.slug}/posts/{post_id}").get_data(as_text=True)
    assert 'data-confirm="Cancel this post on every channel' in detail
    assert 'data-confirm="Delete this post and its history? This cannot be undone."' in detail
    client.submit(f"/w/{tenant.slug}/posts/{post_id}/cancel", page=f"/w/{tenant.slug}/calendar")
    [post] = _posts(tenant)
    assert post.state is PostState.CANCELED and {t.state for t in post.targets} == {TargetState.CANCELED}
    response = client.submit(f"/w/{tenant.slug}/posts/{post_id}/delete", page=f"/w/{tenant.slug}/calendar")
    assert response.status_code == 302
    assert _posts(tenant) == []
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PostTarget)) == 0


def test_deleting_a_published_post_offers_to_delete_it_on_the_network(client, studio, pipeline, network):
    tenant, main, second = studio[0], studio[2], studio[3]
    compose(client, tenant, text="Live", channels=[str(main.id), str(second.id)], publish_now="y")
    pipeline.run_once()
    [post] = _posts(tenant)
    page = client.get(f"/w/{tenant.slug}/posts/{post.id}").get_data(as_text=True)
    assert "Also delete it on @bluebell, @bluebellcafe" in page
    assert "What is live stays on the networks unless you ticked" in page

    response = client.submit(
        f"/w/{tenant.slug}/posts/{post.id}/delete", {"delete_remote": "y"}, page=f"/w/{tenant.slug}/calendar"
    )
    flashed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Deleted here; deleting it on @bluebell, @bluebellcafe now." in flashed
    assert _posts(tenant) == []
    pipeline.work()
    assert network.posts("bluebell") == [] and network.posts("bluebellcafe") == []
    assert len(network.posts("bluebell", include_deleted=True)) == 1


def test_deleting_without_the_tick_leaves_the_network_alone(client, studio, pipeline, network):
    tenant, _, main, _ = studio
    compose(client, tenant, text="Stays live", channels=str(main.id), publish_now="y")
    pipeline.run_once()
    [post] = _posts(tenant)
    client.submit(f"/w/{tenant.slug}/posts/{post.id}/delete", page=f"/w/{tenant.slug}/calendar")
    pipeline.work()
    assert _posts(tenant) == [] and [p.text for p in network.posts("bluebell")] == ["Stays live"]


def test_calendar_shows_the_window_with_filters(client, studio):
    tenant, owner, main, second = studio
    when = in_berlin(10, hour=14)
    first_id = _schedule(client, tenant, [main], "Sourdough Sunday", when, tags="bread")
    _schedule(client, tenant, [second], "Latte art class", when + timedelta(hours=2))
    compose(client, tenant, text="Idea for later", channels=str(main.id), action="draft")

    month = f"/w/{tenant.slug}/calendar?date={when:%Y-%m-%d}"
    page = client.get(month).get_data(as_text=True)
    assert "Times in <strong>Europe/Berlin</strong>" in page
    cell = page.split(f'data-date="{when:%Y-%m-%d}"', 1)[1].split('role="gridcell"', 1)[0]
    assert "14:00</strong> Sourdough Sunday" in cell and "16:00</strong> Latte art class" in cell
    assert f'data-move-url="/w/{tenant.slug}/posts/{first_id}/move"' in cell
    assert "Idea for later" in page  # drafts without a time, listed apart

    only_main = client.get(f"{month}&channel={main.id}").get_data(as_text=True)
    assert "Sourdough Sunday" in only_main and "Latte art class" not in only_main
    by_tag = client.get(f"{month}&tag=bread&view=list&from={when:%Y-%m-%d}").get_data(as_text=True)
    assert "Sourdough Sunday" in by_tag and "Latte art class" not in by_tag
    assert "Nothing in this window" in client.get(f"{month}&view=list&state=failed").get_data(as_text=True)

    earlier = (when - timedelta(days=60)).date()
    assert "Sourdough Sunday" not in client.get(f"/w/{tenant.slug}/calendar?view=week&date={earlier}").get_data(
        as_text=True
    )


def test_the_list_api_returns_the_window_as_json(client, studio):
    tenant, _, main, _ = studio
    when = in_berlin(6, hour=8)
    _schedule(client, tenant, [main], "Croissants", when)
    day = when.date()
    data = client.get(f"/w/{tenant.slug}/calendar/events?from={day}&to={day + timedelta(days=1)}").get_json()
    assert data["timezone"] == "Europe/Berlin"
    [entry] = data["posts"]
    assert (entry["text"], entry["local_time"], entry["channels"], entry["state"]) == (
        "Croissants",
        f"{when:%Y-%m-%dT%H:%M}",
        ["bluebell"],
        "scheduled",
    )
    empty = client.get(f"/w/{tenant.slug}/calendar/events?from={day + timedelta(days=1)}").get_json()
    assert empty["posts"] == []
    assert date.fromisoformat(empty["from"]) == day + timedelta(days=1)


def test_a_busy_day_shows_eight_posts_and_links_to_the_rest(client, studio):
    tenant, owner, main, _ = studio
    when = in_berlin(9, hour=8)
    with app_context(), tenant_session(tenant.id) as session:
        for n in range(10):
            schedule = Schedule(False, when + timedelta(minutes=5 * n), "Europe/Berlin")
            schedule_post(session, author_id=owner.id, text=f"Busy {n}", channel_ids=[main.id], schedule=schedule)
        session.commit()
    page = client.get(f"/w/{tenant.slug}/calendar?date={when:%Y-%m-%d}").get_data(as_text=True)
    cell = page.split(f'data-date="{when:%Y-%m-%d}"', 1)[1].split('role="gridcell"', 1)[0]
    assert cell.count('class="cal-post') == 8 and "Busy 7" in cell and "Busy 8" not in cell
    more = re.search(r'class="more-link" href="([^"]+)">\+ 2 more', cell).group(1)
    listed = client.get(more.replace("&amp;", "&")).get_data(as_text=True)
    assert all(f"Busy {n}" in listed for n in range(10))
