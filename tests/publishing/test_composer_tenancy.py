"""Another workspace's posts, media files, tags, queue slots and calendar feed answer 404 (or show nothing)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import PASSWORD, make_workspace
from tests.publishing.test_media import image_bytes, upload


@pytest.fixture
def victim(make_client, pipeline):
    tenant, owner = make_workspace(name="Victim Bakery", timezone="Europe/Berlin")
    channel = pipeline.connect(tenant, "victim")
    client = make_client()
    client.log_in(owner.email, PASSWORD)
    when = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0)
    page = f"/w/{tenant.slug}/posts/new"
    response = client.submit(
        page,
        {
            "text": "Secret launch",
            "channels": str(channel.id),
            "date": f"{when:%Y-%m-%d}",
            "time": "09:00",
            "tags": "secret-launch",
        },
        page=page,
    )
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    upload(client, tenant, [("secret.png", image_bytes())])
    media_id = int(re.search(r"/media/(\d+)/file", client.get(f"/w/{tenant.slug}/media").get_data(as_text=True))[1])
    client.submit(f"/w/{tenant.slug}/queue/{channel.id}/slots", {"weekday": "0", "time": "09:00"}, page=page)
    slot_id = int(
        re.search(r"/queue/slots/(\d+)/delete", client.get(f"/w/{tenant.slug}/queue").get_data(as_text=True))[1]
    )
    created = client.submit(f"/w/{tenant.slug}/calendar/feed", page=page)
    flashed = client.get(created.headers["Location"]).get_data(as_text=True)
    feed_path = "/feeds/" + re.search(r"/feeds/([\w-]+\.ics)", flashed)[1]
    feed_id = int(re.search(r"/calendar/feed/(\d+)/revoke", flashed)[1])
    return {
        "post": post_id,
        "media": media_id,
        "slot": slot_id,
        "feed": feed_id,
        "feed_path": feed_path,
        "channel": channel.id,
        "when": when,
    }


@pytest.fixture
def intruder(client, pipeline):
    tenant, owner = make_workspace(name="Intruder Co")
    pipeline.connect(tenant, "intruder")
    client.log_in(owner.email, PASSWORD)
    return tenant


def test_another_workspaces_objects_are_not_found(client, victim, intruder):
    w = f"/w/{intruder.slug}"
    for path in (
        f"{w}/posts/{victim['post']}",
        f"{w}/posts/{victim['post']}/edit",
        f"{w}/posts/{victim['post']}/move",
        f"{w}/media/{victim['media']}/file",
    ):
        assert client.get(path).status_code == 404, path
    for path in (
        f"{w}/posts/{victim['post']}/delete",
        f"{w}/posts/{victim['post']}/duplicate",
        f"{w}/media/{victim['media']}/alt",
        f"{w}/queue/slots/{victim['slot']}/delete",
        f"{w}/queue/{victim['channel']}/pause",
        f"{w}/calendar/feed/{victim['feed']}/revoke",
    ):
        assert client.submit(path, page=f"{w}/calendar").status_code == 404, path
    # The victim's things are all still there and working.
    assert client.get(victim["feed_path"]).status_code == 200


def test_another_workspaces_tags_and_posts_never_show_in_the_calendar_or_feed(client, victim, intruder):
    day = victim["when"].date()
    w = f"/w/{intruder.slug}"
    for path in (
        f"{w}/calendar?date={day}&tag=secret-launch",
        f"{w}/calendar?view=list&from={day - timedelta(days=1)}&tag=secret-launch",
        f"{w}/calendar/events?from={day - timedelta(days=1)}",
        f"{w}/calendar/export.csv?view=list&from={day - timedelta(days=1)}",
    ):
        assert "Secret launch" not in client.get(path).get_data(as_text=True), path
