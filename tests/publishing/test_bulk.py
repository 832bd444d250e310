"""CSV import (preview with each row's problems, nothing saved until confirmed), CSV export, the iCalendar feed."""

from __future__ import annotations

import csv
import io
import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from saas.posts.models import Post
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace
from tests.publishing.test_media import image_bytes, upload

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def studio(client, pipeline):
    tenant, owner = make_workspace(name="Bluebell Bakery", timezone="Europe/Berlin")
    main = pipeline.connect(tenant, "bluebell")
    second = pipeline.connect(tenant, "bluebellcafe")
    client.log_in(owner.email, PASSWORD)
    return tenant, main, second


def _post_count(tenant) -> int:
    with app_context(), tenant_session(tenant.id) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Post)) or 0


def _csv(rows: list[list[str]], header=("text", "channels", "date", "time", "media", "tags")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def preview(client, tenant, data: bytes, name="plan.csv"):
    page = f"/w/{tenant.slug}/import"
    return client.submit(page, {"file": (io.BytesIO(data), name)}, page=page, content_type="multipart/form-data")


def _next_gap_day() -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=1)
    while True:
        local = datetime(day.year, day.month, day.day, 2, 30)
        if local.replace(tzinfo=BERLIN).astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) != local:
            return local
        day += timedelta(days=1)


def test_ten_good_and_five_bad_rows_preview_every_problem_and_import_only_when_confirmed(client, studio):
    tenant, main, second = studio
    upload(client, tenant, [("loaf.png", image_bytes())], alt="A loaf")
    day = (datetime.now(UTC) + timedelta(days=7)).astimezone(BERLIN).date()
    good = [
        [
            f"Good post {n}",
            "bluebell; @bluebellcafe" if n % 2 else "bluebell",
            f"{day}",
            f"{8 + n}:15",
            "loaf.png" if n == 3 else "",
            "bread" if n < 5 else "",
        ]
        for n in range(10)
    ]
    gap = _next_gap_day()
    bad = [
        ["Bad date", "bluebell", "2026-02-30", "09:00", "", ""],
        ["Who?", "@nobody", f"{day}", "10:00", "", ""],
        ["x" * 501, "bluebell", f"{day}", "11:00", "", ""],
        ["Where is it", "bluebell", f"{day}", "12:00", "missing.jpg", ""],
        ["Skipped hour", "bluebell", f"{gap:%Y-%m-%d}", "02:30", "", ""],
    ]
    data = _csv(good[:4] + bad[:2] + good[4:8] + bad[2:] + good[8:])
    response = preview(client, tenant, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong>10</strong> rows ready" in page and '<strong class="error">5</strong> with problems' in page
    problems = re.findall(r'<li class="error">(.*?)</li>', page)
    assert len(problems) == 5
    assert "Bad date or time &#39;2026-02-30&#39; &#39;09:00&#39;" in problems[0]
    assert "Unknown channel &#39;@nobody&#39;" in problems[1]
    assert "For @bluebell: Sandbox allows 500 characters; this text counts as 501." in problems[2]
    assert "Missing media &#39;missing.jpg&#39;" in problems[3]
    assert "the clocks skip that hour" in problems[4]
    assert _post_count(tenant) == 0  # the preview saves nothing

    payload = re.search(r'name="payload" value="([^"]+)"', page).group(1)
    done = client.submit(f"/w/{tenant.slug}/import/confirm", {"payload": payload}, page=f"/w/{tenant.slug}/import")
    report = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Imported 10 posts. Skipped 5 rows with problems." in report
    assert _post_count(tenant) == 10
    with app_context(), tenant_session(tenant.id) as session:
        post = session.scalar(sa.select(Post).where(Post.text == "Good post 3"))
        assert [m["alt"] for m in post.media] == ["A loaf"] and post.tags == ["bread"]
        assert {t.channel_id for t in post.targets} == {main.id, second.id}
        assert post.local_time == datetime(day.year, day.month, day.day, 11, 15)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text,channels,date,time\nCafé,bluebell,2030-01-01,09:00\n".encode("latin-1"), "The file is not UTF-8 text"),
        (b"Hello,bluebell,2030-01-01,09:00\n", "The first row must name the columns text, channels, date, time"),
        (b"text,channels,when\nHi,bluebell,2030-01-01\n", "missing: date, time."),
        (b"", "Choose a CSV file to upload."),
        (b"text,channels,date,time\n", "The file has a header but no rows."),
    ],
)
def test_a_malformed_file_gets_a_clear_error(client, studio, data, message):
    tenant, _, _ = studio
    response = preview(client, tenant, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _post_count(tenant) == 0


def test_a_tampered_confirmation_imports_nothing(client, studio):
    tenant, _, _ = studio
    response = client.submit(
        f"/w/{tenant.slug}/import/confirm", {"payload": "not base64!"}, page=f"/w/{tenant.slug}/import"
    )
    assert response.status_code == 422 and "Upload the file again" in response.get_data(as_text=True)
    assert _post_count(tenant) == 0


def _schedule(client, tenant, channel, text, when):
    page = f"/w/{tenant.slug}/posts/new"
    fields = {"text": text, "channels": str(channel.id), "date": f"{when:%Y-%m-%d}", "time": f"{when:%H:%M}"}
    assert client.submit(page, fields, page=page).status_code == 302


def test_export_a_window_as_csv_that_imports_again(client, studio):
    tenant, main, _ = studio
    when = (datetime.now(UTC) + timedelta(days=5)).astimezone(BERLIN).replace(hour=9, minute=0, tzinfo=None)
    _schedule(client, tenant, main, "=cmd|' /C calc'!A0 and bread", when)
    _schedule(client, tenant, main, "Outside the window", when + timedelta(days=40))
    response = client.get(
        f"/w/{tenant.slug}/calendar/export.csv?view=list&from={when:%Y-%m-%d}&to={when + timedelta(days=1):%Y-%m-%d}"
    )
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["text"] == "'=cmd|' /C calc'!A0 and bread"  # a formula stays text in a spreadsheet
    assert (row["channels"], row["date"], row["time"], row["timezone"], row["state"]) == (
        "bluebell",
        f"{when:%Y-%m-%d}",
        "09:00",
        "Europe/Berlin",
        "scheduled",
    )
    page = preview(client, tenant, response.data).get_data(as_text=True)
    assert "<strong>1</strong> row ready" in page


def test_the_calendar_feed_is_secret_revocable_and_only_this_workspace(client, studio, make_client, pipeline):
    tenant, main, _ = studio
    when = (
        (datetime.now(UTC) + timedelta(days=2)).astimezone(BERLIN).replace(hour=10, minute=0, second=0, microsecond=0)
    )
    when = when.replace(tzinfo=None)
    _schedule(client, tenant, main, "Brioche day", when)
    other, stranger = make_workspace(name="Other Co")
    other_channel = pipeline.connect(other, "otherco")
    other_client = make_client()
    other_client.log_in(stranger.email, PASSWORD)
    _schedule(other_client, other, other_channel, "Other's secret", when)

    created = client.submit(f"/w/{tenant.slug}/calendar/feed", page=f"/w/{tenant.slug}/calendar")
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    url = re.search(r"(http://\S+/feeds/[\w-]+\.ics)", page).group(1)
    path = "/feeds/" + url.rsplit("/feeds/", 1)[1]

    anonymous = make_client()
    feed = anonymous.get(path)
    assert feed.mimetype == "text/calendar"
    events = icalendar.Calendar.from_ical(feed.data).walk("VEVENT")
    assert [str(e["summary"]) for e in events] == ["[scheduled] Brioche day"]
    assert events[0].decoded("dtstart") == when.replace(tzinfo=BERLIN).astimezone(UTC)
    assert anonymous.get("/feeds/not-a-real-token.ics").status_code == 404

    feed_id = int(
        re.search(
            r"/calendar/feed/(\d+)/revoke", client.get(f"/w/{tenant.slug}/calendar").get_data(as_text=True)
        ).group(1)
    )
    assert (
        other_client.submit(
            f"/w/{other.slug}/calendar/feed/{feed_id}/revoke", page=f"/w/{other.slug}/calendar"
        ).status_code
        == 404
    )
    assert anonymous.get(path).status_code == 200
    client.submit(f"/w/{tenant.slug}/calendar/feed/{feed_id}/revoke", page=f"/w/{tenant.slug}/calendar")
    assert anonymous.get(path).status_code == 404


def test_a_file_too_large_is_refused_before_it_is_read(client, studio):
    tenant, _, _ = studio
    big = b"text,channels,date,time\n" + b"x" * (3 * 1024 * 1024)
    response = preview(client, tenant, big)
    assert response.status_code == 422
    assert "The file is larger than 2 MB. Split it into smaller files." in response.get_data(as_text=True)
    assert _post_count(tenant) == 0
