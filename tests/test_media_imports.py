"""Add media from a URL: recorded by the page, fetched safely by a worker, checked like an upload, failures explained.

A local file host stands in for the web; a stub resolver gives it a public-looking name (photos.example),
which the app may reach on loopback as `make run`'s fakes are. Every other name resolves to our own network.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from saas.media import imports
from saas.media.models import ImportState, MediaImport, MediaItem
from tenants import tenant_session
from tests.factories import PASSWORD, app_context, make_workspace
from tests.fakes.dns import StubResolver
from tests.fakes.files import FakeFileHost


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "tan").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def web(app, monkeypatch) -> Iterator[FakeFileHost]:
    monkeypatch.setitem(app.config, "FETCH_LOOPBACK_HOSTS", ["photos.example"])
    monkeypatch.setitem(
        app.extensions,
        "fetch_resolver",
        StubResolver({"photos.example": ["127.0.0.1"], "intranet.example": ["10.0.0.5"]}),
    )
    with FakeFileHost() as host:
        host.base = f"http://photos.example:{host.port}"
        yield host


@pytest.fixture
def workspace(client):
    tenant, owner = make_workspace(name="Import Bakery")
    client.log_in(owner.email, PASSWORD)
    return tenant


def ask(client, tenant, url: str, alt: str = ""):
    page = f"/w/{tenant.slug}/media"
    return client.submit(f"{page}/from-url", {"url": url, "alt": alt}, page=page, follow_redirects=True)


def run_worker(redis_conn) -> None:
    with app_context():
        queue = Queue(imports.QUEUE, connection=redis_conn, serializer=JSONSerializer)
        SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)


def rows(tenant) -> list[MediaImport]:
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(MediaImport).order_by(MediaImport.id)))


def library(tenant) -> list[MediaItem]:
    with app_context(), tenant_session(tenant.id) as session:
        return list(session.scalars(sa.select(MediaItem)))


def test_an_image_by_url_is_fetched_by_the_worker_not_the_page(client, workspace, web, redis_conn):
    web.put("/bread.png", png(), "image/png")

    page = ask(client, workspace, f"{web.base}/bread.png?size=large", alt="A loaf")

    assert web.hosts_seen == []  # the web request fetched nothing
    assert "Waiting" in page.get_data(as_text=True)
    listing = client.get(f"/w/{workspace.slug}/media")
    assert listing.headers["Refresh"] == "5"

    run_worker(redis_conn)

    [row] = rows(workspace)
    assert row.state is ImportState.DONE and row.error is None
    [item] = library(workspace)
    assert (row.media_id, item.filename, item.mime_type, item.alt) == (item.id, "bread.png", "image/png", "A loaf")
    assert web.hosts_seen == [f"photos.example:{web.port}"]
    listing = client.get(f"/w/{workspace.slug}/media")
    assert "Refresh" not in listing.headers
    assert "Added" in listing.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("redirect", "Refused: address 127.0.0.1 is loopback"),
        ("intranet", "Refused: address 10.0.0.5 is private"),
        ("script.png", "is not a JPEG, PNG, GIF, WebP or MP4 file we can read"),
        ("missing.png", "answered HTTP 404"),
    ],
)
def test_a_refused_fetch_is_recorded_with_its_reason(client, workspace, web, redis_conn, path, reason):
    web.redirect("/redirect", "http://127.0.0.1:6379/")
    web.put("/script.png", b"<html><script>alert(1)</script></html>", "image/png")
    url = "http://intranet.example/cat.png" if path == "intranet" else f"{web.base}/{path}"
    ask(client, workspace, url)

    run_worker(redis_conn)

    [row] = rows(workspace)
    assert row.state is ImportState.FAILED and reason in (row.error or "")
    assert library(workspace) == []
    page = client.get(f"/w/{workspace.slug}/media").get_data(as_text=True)
    assert "Failed" in page and reason.replace("'", "&#39;") in page


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the address of an image or video."),
        ("ftp://photos.example/x.png", "Only http:// and https://"),
        ("http://127.1/x.png", "Refused: address 127.0.0.1 is loopback"),
        ("http://0x7f000001/", "Refused: address 127.0.0.1 is loopback"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("https://" + "a" * 2000 + ".example/x.png", "Keep the address to 2000 characters."),
    ],
)
def test_an_address_that_can_never_be_fetched_is_refused_at_once(client, workspace, web, redis_conn, url, message):
    page = ask(client, workspace, url).get_data(as_text=True)
    assert message in page
    assert rows(workspace) == []
    assert Queue(imports.QUEUE, connection=redis_conn).count == 0


def test_an_import_job_cannot_be_aimed_at_another_workspace(client, workspace, web, redis_conn):
    web.put("/bread.png", png(), "image/png")
    ask(client, workspace, f"{web.base}/bread.png")
    [victim_row] = rows(workspace)
    other, _owner = make_workspace(name="Other Bakery")

    with app_context():
        assert imports.import_media(other.id, victim_row.id) == "not queued"

    assert rows(workspace)[0].state is ImportState.QUEUED
    assert library(other) == [] and web.hosts_seen == []


def test_viewers_cannot_add_media_by_url(client, web):
    from tenants.models import Role
    from tests.factories import add_member, make_user

    tenant, _owner = make_workspace()
    viewer = make_user()
    add_member(tenant, viewer, Role.VIEWER)
    client.log_in(viewer.email, PASSWORD)
    page = f"/w/{tenant.slug}/media"
    assert client.submit(f"{page}/from-url", {"url": f"{web.base}/x.png"}, page=page).status_code == 403
    assert rows(tenant) == []


def test_an_import_whose_worker_never_finished_stops_refreshing_and_says_so(client, workspace):
    with app_context(), tenant_session(workspace.id) as session:
        session.add(
            MediaImport(
                url="https://photos.example/lost.png",
                state=ImportState.FETCHING,
                created_at=datetime.now(UTC) - timedelta(minutes=20),
            )
        )
        session.commit()

    listing = client.get(f"/w/{workspace.slug}/media")

    assert "Refresh" not in listing.headers
    assert "This stopped before it finished. Add the address again to retry." in listing.get_data(as_text=True)


def test_at_most_ten_imports_wait_at_once(client, workspace, web, redis_conn):
    other, other_owner = make_workspace(name="Busy Neighbour")
    with app_context(), tenant_session(other.id) as session:  # another workspace's queue counts for it alone
        for n in range(imports.MAX_PENDING):
            session.add(MediaImport(url=f"https://photos.example/{n}.png", requested_by=other_owner.id))
        session.commit()
    for n in range(imports.MAX_PENDING):
        ask(client, workspace, f"{web.base}/photo-{n}.png")

    page = ask(client, workspace, f"{web.base}/one-too-many.png").get_data(as_text=True)

    assert "10 addresses are being fetched already; add more when they are done." in page
    assert len(rows(workspace)) == imports.MAX_PENDING
    run_worker(redis_conn)  # they finish (as failures: nothing is there)
    ask(client, workspace, f"{web.base}/one-too-many.png")
    assert len(rows(workspace)) == imports.MAX_PENDING + 1
