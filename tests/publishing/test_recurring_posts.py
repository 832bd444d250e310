"""Repeating posts: one occurrence at a time, made when the current one is due, never a burst of missed ones."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from saas.posts.models import Post, PostTarget
from saas.posts.recurrence import advance_all, due_series
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def studio(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    main = pipeline.connect(tenant, "bluebell")
    client.log_in(owner.email, PASSWORD)
    return tenant, main


def _posts(tenant):
    with app_context(), tenant_session(tenant.id) as session:
        posts = list(session.scalars(sa.select(Post).order_by(Post.id)))
        for p in posts:
            _ = p.targets
        return posts


def compose_repeating(client, tenant, channel, first: datetime, **repeat):
    page = f"/w/{tenant.slug}/posts/new"
    fields = {
        "text": "Weekly bread club",
        "channels": str(channel.id),
        "date": f"{first:%Y-%m-%d}",
        "time": f"{first:%H:%M}",
        f"override-{channel.id}": "Bread club, this week too",
        **repeat,
    }
    return client.submit(page, fields, page=page)


def tomorrow_9() -> datetime:
    day = (datetime.now(UTC) + timedelta(days=1)).astimezone(BERLIN).date()
    return datetime(day.year, day.month, day.day, 9, 0)


def test_the_next_occurrence_is_made_only_when_the_current_one_is_due(app, client, studio, pipeline, network):
    tenant, main = studio
    first = tomorrow_9()
    assert compose_repeating(client, tenant, main, first, repeat="weekly", repeat_every="1").status_code == 302
    [post] = _posts(tenant)
    assert (post.series_id, post.occurrence_no) == (post.id, 1)
    first_utc = post.scheduled_at

    with app.app_context():
        assert advance_all(first_utc - timedelta(minutes=1)) == 0  # not yet due: nothing ahead of time
        assert advance_all(first_utc + timedelta(minutes=1)) == 1
        assert advance_all(first_utc + timedelta(minutes=2)) == 0  # made once, however often the clock ticks
    first_post, second = _posts(tenant)
    assert second.local_time == first + timedelta(days=7) and second.occurrence_no == 2
    assert second.scheduled_at == (first + timedelta(days=7)).replace(tzinfo=BERLIN).astimezone(UTC)
    assert [t.text_override for t in second.targets] == ["Bread club, this week too"]

    with app_context(), tenant_session(tenant.id) as session:
        session.execute(sa.update(PostTarget).where(PostTarget.post_id == second.id).values(due_at=sa.func.now()))
        session.commit()
    pipeline.run_once()
    assert [p.text for p in network.posts("bluebell")] == ["Bread club, this week too"]


def test_a_clock_that_was_down_makes_one_occurrence_not_a_burst(app, client, studio):
    tenant, main = studio
    first = tomorrow_9()
    compose_repeating(client, tenant, main, first, repeat="daily", repeat_every="1")
    [post] = _posts(tenant)
    much_later = post.scheduled_at + timedelta(days=10, hours=3)
    with app.app_context():
        assert advance_all(much_later) == 1
    _, nxt = _posts(tenant)
    assert nxt.scheduled_at > much_later
    assert nxt.local_time == first + timedelta(days=11) and nxt.occurrence_no == 12


def test_a_series_ends_after_its_count(app, client, studio):
    tenant, main = studio
    compose_repeating(client, tenant, main, tomorrow_9(), repeat="daily", repeat_count="2")
    with app.app_context():
        advance_all(_posts(tenant)[0].scheduled_at + timedelta(minutes=1))
        second = _posts(tenant)[1]
        assert advance_all(second.scheduled_at + timedelta(minutes=1)) == 0
    assert len(_posts(tenant)) == 2
    assert _posts(tenant)[1].recurrence is None  # ended: nothing more to look for
    with app.app_context():
        assert due_series(second.scheduled_at + timedelta(days=30)) == []  # not even looked at again


def test_stop_repeating(app, client, studio):
    tenant, main = studio
    compose_repeating(client, tenant, main, tomorrow_9(), repeat="weekly")
    [post] = _posts(tenant)
    detail = client.get(f"/w/{tenant.slug}/posts/{post.id}").get_data(as_text=True)
    assert "Repeats:</strong> Every week at 09:00 Europe/Berlin" in detail
    client.submit(f"/w/{tenant.slug}/posts/{post.id}/stop-repeating", page=f"/w/{tenant.slug}/calendar")
    with app.app_context():
        assert advance_all(post.scheduled_at + timedelta(minutes=1)) == 0
    assert len(_posts(tenant)) == 1


def test_a_bad_rule_is_explained_and_nothing_is_saved(client, studio):
    tenant, main = studio
    response = compose_repeating(client, tenant, main, tomorrow_9(), repeat="weekly", repeat_every="0")
    assert response.status_code == 422
    assert "Use 1 to 365." in response.get_data(as_text=True)
    response = compose_repeating(client, tenant, main, tomorrow_9(), repeat="weekly", publish_now="y")
    assert "A repeating post needs a date and time for its first occurrence." in response.get_data(as_text=True)
    assert _posts(tenant) == []


def test_editing_a_later_occurrence_keeps_one_series(app, client, studio):
    tenant, main = studio
    first = tomorrow_9()
    compose_repeating(client, tenant, main, first, repeat="weekly")
    with app.app_context():
        advance_all(_posts(tenant)[0].scheduled_at + timedelta(minutes=1))
    head, second = _posts(tenant)
    edit = f"/w/{tenant.slug}/posts/{second.id}/edit"
    fields = {
        "text": "Bread club, edited",
        "channels": str(main.id),
        "date": f"{second.local_time:%Y-%m-%d}",
        "time": "09:00",
        "repeat": "weekly",
    }
    assert client.submit(edit, fields, page=edit).status_code == 302
    edited = _posts(tenant)[1]
    assert (edited.series_id, edited.occurrence_no) == (head.id, 2)
    with app.app_context():
        assert due_series(head.scheduled_at + timedelta(minutes=2)) == []  # the first is no longer the latest
        assert advance_all(edited.scheduled_at + timedelta(minutes=1)) == 1
    assert [p.occurrence_no for p in _posts(tenant)] == [1, 2, 3]
