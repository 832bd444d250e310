"""The public API (/api/v1): tokens, tenancy, idempotency, concurrency, input errors, rate limits."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from PIL import Image

from publishers.base import Credentials, Profile
from saas import db
from saas.api.models import ApiToken
from saas.api.registry import api
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, StepRule
from saas.channels import service as channel_service
from saas.posts.models import Post
from tenants import system_session
from tenants.models import AuditEntry, Role
from tests.factories import PASSWORD, add_member, app_context, make_api_token, make_user, make_workspace


def connect(tenant, network: str = "sandbox", handle: str = "shop") -> int:
    with app_context(), db.new_session() as session:
        from tenants import bind_tenant

        bind_tenant(session, tenant.id)
        channel = channel_service.connect(
            session,
            network,
            Profile(remote_id=f"{network}-{handle}-{tenant.id}", handle=handle, display_name=handle.title()),
            Credentials(access_token="secret"),
        )
        session.commit()
        return channel.id


class Api:
    """Requests to /api/v1 with one token."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def __call__(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any):
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        return self.client.open(f"/api/v1{path}", method=method, json=json, headers=sent, **kw)


def soon(days: int = 3, hour: int = 9) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.isoformat()


@pytest.fixture
def shop(app, client):
    tenant, owner = make_workspace(name="Shop Co", timezone="Europe/Paris")
    channel_id = connect(tenant)
    return {
        "tenant": tenant,
        "owner": owner,
        "channel_id": channel_id,
        "api": Api(client, make_api_token(tenant, owner)),
        "read_only": Api(client, make_api_token(tenant, owner, ("read",))),
    }


def post_body(channel_id: int, **fields: Any) -> dict[str, Any]:
    return {"text": "Fresh bread at nine", "channel_ids": [channel_id], "scheduled_at": soon(), **fields}


def test_create_then_read_a_post_with_times_in_rfc3339(shop):
    api = shop["api"]
    created = api("POST", "/posts", post_body(shop["channel_id"], scheduled_at="2027-03-05T09:30:00+01:00"))
    assert created.status_code == 201, created.json
    post = created.json
    assert post["state"] == "scheduled"
    assert post["scheduled_at"] == "2027-03-05T08:30:00Z"
    assert post["scheduled_at_local"] == "2027-03-05T09:30:00+01:00"  # the workspace's zone, Paris
    assert [t["channel_id"] for t in post["targets"]] == [shop["channel_id"]]
    assert created.headers["Location"] == f"/api/v1/posts/{post['id']}"

    read = api("GET", f"/posts/{post['id']}")
    assert read.status_code == 200
    assert read.json == post
    assert read.headers["ETag"] == f'"{post["version"]}"'


def test_list_pages_through_a_window_with_a_cursor_and_filters(shop):
    api, channel_id = shop["api"], shop["channel_id"]
    other_channel = connect(shop["tenant"], handle="second")
    ids = []
    for day in range(1, 6):
        body = post_body(
            channel_id if day != 5 else other_channel, scheduled_at=soon(day), tags=["bread"] if day % 2 else []
        )
        ids.append(api("POST", "/posts", body).json["id"])
    api("POST", "/posts", {"text": "someday", "channel_ids": [channel_id], "draft": True})

    seen, cursor = [], None
    while True:
        page = api("GET", "/posts", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}).json
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:5] == ids  # time order, then the undated draft
    assert len(seen) == 6

    window = {"from": soon(2, 0), "to": soon(4, 0)}
    assert [p["id"] for p in api("GET", "/posts", query_string=window).json["data"]] == ids[1:3]
    assert [p["id"] for p in api("GET", "/posts", query_string={"tag": "bread"}).json["data"]] == [
        ids[0],
        ids[2],
        ids[4],
    ]
    assert [p["id"] for p in api("GET", "/posts", query_string={"channel_id": other_channel}).json["data"]] == [ids[4]]
    assert len(api("GET", "/posts", query_string={"state": "draft"}).json["data"]) == 1


def test_naive_and_unparseable_window_times_are_refused(shop):
    api = shop["api"]
    naive = api("GET", "/posts", query_string={"from": "2031-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.mimetype == "application/problem+json"
    assert naive.json["errors"][0]["field"] == "from"
    assert "offset" in naive.json["errors"][0]["message"]
    assert api("GET", "/posts", query_string={"to": "next tuesday"}).json["errors"][0]["field"] == "to"
    assert api("GET", "/posts", query_string={"cursor": "garbage"}).json["errors"][0]["field"] == "cursor"
    assert api("GET", "/posts", query_string={"limit": "lots"}).json["errors"][0]["field"] == "limit"
    assert api("GET", "/posts", query_string={"colour": "red"}).json["errors"][0]["field"] == "colour"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"text": 5}, "text", "string"),
        ({"channel_ids": "all"}, "channel_ids", "array"),
        ({"channel_ids": [True]}, "channel_ids.0", "integer"),
        ({"scheduled_at": "2031-03-05T09:30:00"}, "scheduled_at", "offset"),
        ({"scheduled_at": "tomorrow morning"}, "scheduled_at", "RFC 3339"),
        ({"scheduled_at": "2031-02-30T09:00:00Z"}, "scheduled_at", "RFC 3339"),
        ({"scheduled_at": "2020-01-01T09:00:00Z"}, "scheduled_at", "already passed"),
        ({"channel_ids": [987654]}, "channel_ids", "987654"),
        ({"media_ids": [424242]}, "media_ids", "424242"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"text": "   "}, "text", "Write the text"),
        ({"text": "x" * 10_001}, "text", "10000"),
        ({"tags": ["t" * 41]}, "tags.0", "40"),
        ({"recurrence": {"freq": "hourly"}}, "recurrence.freq", "daily"),
        ({"recurrence": {"freq": "weekly", "interval": 0}}, "recurrence.interval", "1"),
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"text": "nul\x00byte"}, "text", "NUL"),
        ({"publish_now": True}, "scheduled_at", "one of"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(shop, change, field, words):
    response = shop["api"]("POST", "/posts", post_body(shop["channel_id"], **change))
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["status"] == 422 and problem["title"] and problem["type"]
    assert [e["field"] for e in problem["errors"]] == [field]
    assert words in problem["errors"][0]["message"]
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 0


def test_text_too_long_for_a_network_names_the_network_and_its_limit(shop):
    x_channel = connect(shop["tenant"], network="x", handle="shopx")
    response = shop["api"]("POST", "/posts", post_body(x_channel, text="a" * 300))
    assert response.status_code == 422
    message = response.json["errors"][0]["message"]
    assert response.json["errors"][0]["field"] == "text"
    assert "@shopx" in message and "X" in message and "280" in message


def test_the_body_must_be_json(shop):
    api = shop["api"]
    assert api("POST", "/posts", data="text=hi", headers={"Content-Type": "text/plain"}).status_code == 415
    broken = api("POST", "/posts", data="{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.mimetype == "application/problem+json"


def test_same_post_sent_twice_with_one_key_makes_one_post(shop):
    api = shop["api"]
    body = post_body(shop["channel_id"])
    first = api("POST", "/posts", body, headers={"Idempotency-Key": "order-7"})
    again = api("POST", "/posts", body, headers={"Idempotency-Key": "order-7"})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert len(api("GET", "/posts").json["data"]) == 1

    other = api("POST", "/posts", {**body, "text": "Something else"}, headers={"Idempotency-Key": "order-7"})
    assert other.status_code == 422
    assert other.json["errors"][0]["field"] == "Idempotency-Key"
    assert len(api("GET", "/posts").json["data"]) == 1


def test_a_key_is_remembered_for_a_day_then_forgotten(shop, app):
    from saas.api import idempotency
    from saas.api.models import IdempotentResponse

    api = shop["api"]
    body = post_body(shop["channel_id"])
    assert api("POST", "/posts", body, headers={"Idempotency-Key": "old"}).status_code == 201
    assert api("POST", "/posts", body, headers={"Idempotency-Key": "new"}).status_code == 201
    with app.app_context(), system_session() as session:
        session.execute(
            sa.update(IdempotentResponse)
            .where(IdempotentResponse.key == "old")
            .values(created_at=sa.func.now() - idempotency.KEPT - timedelta(minutes=1))
        )
        session.commit()

    with app.app_context():
        assert idempotency.prune(datetime.now(UTC)) == 1

    again = api("POST", "/posts", body, headers={"Idempotency-Key": "new"})
    assert again.headers["Idempotent-Replayed"] == "true"  # a day's keys still hold
    assert api("POST", "/posts", body, headers={"Idempotency-Key": "old"}).status_code == 201  # a new request
    assert len(api("GET", "/posts").json["data"]) == 3


def test_a_refused_request_can_be_corrected_under_the_same_key(shop):
    api = shop["api"]
    refused = api("POST", "/posts", post_body(shop["channel_id"], text=""), headers={"Idempotency-Key": "k1"})
    assert refused.status_code == 422
    fixed = api("POST", "/posts", post_body(shop["channel_id"]), headers={"Idempotency-Key": "k1"})
    assert fixed.status_code == 201


def test_stale_updates_are_refused(shop):
    api = shop["api"]
    post = api("POST", "/posts", post_body(shop["channel_id"])).json
    path = f"/posts/{post['id']}"
    edited = api("PATCH", path, {"text": "Fresh bread at ten"}, headers={"If-Match": f'"{post["version"]}"'})
    assert edited.status_code == 200, edited.json
    assert edited.json["version"] == post["version"] + 1
    assert edited.json["scheduled_at"] == post["scheduled_at"]  # what was not sent is kept

    stale_header = api("PATCH", path, {"text": "Lost update"}, headers={"If-Match": f'"{post["version"]}"'})
    assert stale_header.status_code == 412
    stale_body = api("PATCH", path, {"text": "Lost update", "version": post["version"]})
    assert stale_body.status_code == 409
    assert api("GET", path).json["text"] == "Fresh bread at ten"


def test_delete_and_cancel(shop):
    api = shop["api"]
    one = api("POST", "/posts", post_body(shop["channel_id"])).json
    two = api("POST", "/posts", post_body(shop["channel_id"], scheduled_at=soon(4))).json
    assert api("POST", f"/posts/{one['id']}/cancel").json["state"] == "canceled"
    assert api("POST", f"/posts/{one['id']}/cancel").status_code == 409
    assert api("DELETE", f"/posts/{two['id']}").status_code == 204
    assert api("GET", f"/posts/{two['id']}").status_code == 404


def test_read_only_token_cannot_write(shop):
    read_only, channel_id = shop["read_only"], shop["channel_id"]
    writes = [op for op, _path in api.served() if op.scope.value != "read" and not _path.startswith("/clients/")]
    assert writes
    for op in writes:
        path = op.path.format(post_id=1, channel_id=channel_id, slot_id=1, media_id=1)
        response = read_only(op.method, path, json={})
        assert response.status_code == 403, f"{op.method} {path}: {response.status_code}"
        assert "scope" in response.json["detail"]
    assert read_only("GET", "/posts").status_code == 200


def test_a_viewer_token_cannot_schedule_even_with_write_scope(app, client):
    tenant, viewer = make_workspace(Role.VIEWER)
    channel_id = connect(tenant)
    response = Api(client, make_api_token(tenant, viewer))("POST", "/posts", post_body(channel_id))
    assert response.status_code == 403


def test_revoked_missing_or_cookie_credentials_are_401(shop, client):
    api = shop["api"]
    assert api("GET", "/posts").status_code == 200
    with app_context(), db.new_session() as session:
        from tenants import bind_tenant

        bind_tenant(session, shop["tenant"].id)
        session.execute(sa.update(ApiToken).values(revoked_at=datetime.now(UTC)))
        session.commit()
    revoked = api("GET", "/posts")
    assert revoked.status_code == 401
    assert revoked.mimetype == "application/problem+json"
    assert "WWW-Authenticate" in revoked.headers
    assert Api(client, None)("GET", "/posts").status_code == 401
    assert Api(client, "mp_not-a-real-token")("GET", "/posts").status_code == 401

    client.log_in(shop["owner"].email, PASSWORD)  # a logged-in browser: its cookie is no API credential
    assert client.get("/api/v1/posts").status_code == 401
    assert client.post("/api/v1/posts", json=post_body(shop["channel_id"])).status_code == 401


def test_a_member_who_left_takes_their_tokens_with_them(app, client):
    tenant, owner = make_workspace()
    editor = make_user()
    membership = add_member(tenant, editor, Role.EDITOR)
    token = Api(client, make_api_token(tenant, editor))
    assert token("GET", "/posts").status_code == 200
    with app_context(), system_session() as session:
        session.execute(sa.text("DELETE FROM memberships WHERE id = :id"), {"id": membership.id})
        session.commit()
    assert token("GET", "/posts").status_code == 401


def _victim_ids(client) -> tuple[Any, dict[str, int]]:
    tenant, owner = make_workspace(name="Victim Co")
    channel_id = connect(tenant, handle="victim")
    victim = Api(client, make_api_token(tenant, owner))
    post = victim("POST", "/posts", post_body(channel_id, text="Victim's secret launch")).json
    slot = victim("POST", f"/channels/{channel_id}/queue-slots", {"weekday": 0, "time": "09:00"}).json
    media = victim("POST", "/media", data={"file": (io.BytesIO(gif()), "v.gif"), "alt": "secret"})
    assert media.status_code == 201, media.json
    return tenant, {
        "post_id": post["id"],
        "channel_id": channel_id,
        "slot_id": slot["id"],
        "media_id": media.json["id"],
    }


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40)).save(out, format="GIF")
    return out.getvalue()


def _snapshot(tenant_id: int) -> list[Any]:
    with app_context(), system_session() as session:
        return [
            session.execute(sa.text(f"SELECT * FROM {table} WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}).all()
            for table in (
                "posts",
                "post_targets",
                "channels",
                "posting_slots",
                "media_items",
                "approval_requests",
                "post_comments",
            )
        ]


VALID_BODIES = {
    "PostUpdate": {"text": "Hijacked"},
    "Decision": {"version": 1, "comment": "Hijacked"},
    "CommentCreate": {"body": "Hijacked"},
    "MediaUpdate": {"alt": "Hijacked"},
    "SlotCreate": {"weekday": 1, "time": "10:00"},
    "PostCreate": {"text": "Hijacked", "channel_ids": [1], "publish_now": True},
    "ClientCreate": {"name": "Hijacked"},
}


def test_every_operation_on_another_tenants_ids_is_404(shop, client):
    victim, ids = _victim_ids(client)
    before = _snapshot(victim.id)
    intruder = shop["api"]
    tried = 0
    for op, path in api.served():
        if "{" not in path:
            continue
        # Every operation naming an object, aimed at the victim's; client paths at the victim as a "client".
        url = path.format(client_id=victim.id, **ids)
        response = intruder(op.method, url, json=VALID_BODIES[op.body.__name__] if op.body else None)
        assert response.status_code == 404, f"{op.method} {url}: {response.status_code} {response.json}"
        assert b"Victim" not in response.data
        tried += 1
    assert tried >= 20
    assert _snapshot(victim.id) == before


def test_lists_show_only_the_tokens_workspace(shop, client):
    _victim, _ids = _victim_ids(client)
    api = shop["api"]
    for path in ("/posts", "/channels", "/media", "/queue-slots", "/tags", "/members", "/clients"):
        response = api("GET", path)
        assert response.status_code == 200, path
        assert b"victim" not in response.data.lower(), path


def test_rate_limit_headers_then_429(shop, app):
    api = shop["api"]
    previous = app.config["API_RATE_LIMIT"]
    app.config["API_RATE_LIMIT"] = "3 per minute"
    try:
        answers = [api("GET", "/channels") for _ in range(4)]
    finally:
        app.config["API_RATE_LIMIT"] = previous
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].mimetype == "application/problem+json"


def test_approve_and_request_changes_through_the_api(shop, client):
    tenant = shop["tenant"]
    reviewer = make_user()
    add_member(tenant, reviewer, Role.REVIEWER)
    with app_context(), db.new_session() as session:
        from tenants import bind_tenant

        bind_tenant(session, tenant.id)
        approvals.set_policy(session, ApprovalMode.REQUIRED, [approvals.Step("Client", StepRule.ANY, ("reviewer",))])
        session.commit()
    post = shop["api"]("POST", "/posts", post_body(shop["channel_id"])).json
    assert post["state"] == "in_review"
    reviewer_api = Api(client, make_api_token(tenant, reviewer, ("read", "approve")))
    assert reviewer_api("POST", "/posts", post_body(shop["channel_id"])).status_code == 403

    vague = reviewer_api("POST", f"/posts/{post['id']}/approval/request-changes", {"version": post["version"]})
    assert vague.status_code == 409 and "Say what should change" in vague.json["detail"]
    stale = reviewer_api("POST", f"/posts/{post['id']}/approval/approve", {"version": post["version"] + 1})
    assert stale.status_code == 409
    approved = reviewer_api("POST", f"/posts/{post['id']}/approval/approve", {"version": post["version"]})
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved" and approved.json["post_state"] == "scheduled"

    comment = reviewer_api("POST", f"/posts/{post['id']}/comments", {"body": "Lovely"})
    assert comment.status_code == 201
    assert [c["body"] for c in shop["api"]("GET", f"/posts/{post['id']}/comments").json["data"]] == ["Lovely"]


def test_channels_pause_resume_slots_media_tags_members(shop):
    api, channel_id = shop["api"], shop["channel_id"]
    api("POST", "/posts", post_body(channel_id, tags=["Bread"]))
    paused = api("POST", f"/channels/{channel_id}/pause")
    assert paused.json == {**paused.json, "affected_posts": 1} and paused.json["channel"]["paused"] is True
    assert api("POST", f"/channels/{channel_id}/resume").json["affected_posts"] == 1

    slot = api("POST", f"/channels/{channel_id}/queue-slots", {"weekday": 2, "time": "08:15"})
    assert slot.status_code == 201 and slot.json["label"] == "Wednesday 08:15"
    assert api("POST", f"/channels/{channel_id}/queue-slots", {"weekday": 2, "time": "08:15"}).status_code == 409
    assert api("POST", f"/channels/{channel_id}/queue-slots", {"weekday": 7, "time": "25:00"}).status_code == 422
    queued = api("POST", "/posts", {"text": "Into the queue", "channel_ids": [channel_id], "queue": True})
    assert queued.status_code == 201 and queued.json["scheduled_at_local"].startswith(
        queued.json["scheduled_at_local"][:10]
    )
    assert api("DELETE", f"/queue-slots/{slot.json['id']}").status_code == 204
    assert api("GET", "/queue-slots").json["data"] == []

    upload = api("POST", "/media", data={"file": (io.BytesIO(gif()), "logo.gif"), "alt": "Our logo"})
    assert upload.status_code == 201 and upload.json["mime_type"] == "image/gif"
    bad = api("POST", "/media", data={"file": (io.BytesIO(b"not an image"), "x.png")})
    assert bad.status_code == 422 and "x.png" in bad.json["errors"][0]["message"]
    assert api("PATCH", f"/media/{upload.json['id']}", {"alt": "Logo, blue"}).json["alt"] == "Logo, blue"

    assert api("GET", "/tags").json["data"] == [{"tag": "bread", "posts": 1}]
    assert [m["email"] for m in api("GET", "/members").json["data"]] == [shop["owner"].email]


def test_agency_token_reaches_only_the_clients_its_person_may_work_in(app, client):
    from tenants import agency as agency_service
    from tenants.models import ClientMode, Tenant, TenantKind
    from tests.factories import make_tenant

    owner = make_user()
    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=owner)
    staff = make_user()
    add_member(agency, staff, Role.EDITOR)
    assigned = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)
    other = make_tenant("Copper", kind=TenantKind.CLIENT, managed_by=agency)
    with app_context(), db.new_session() as session:
        from tenants import bind_tenant

        bind_tenant(session, agency.id)
        client_row = session.get(Tenant, assigned.id)
        agency_service.assign(session, client_row, staff.id, session.get(type(owner), owner.id), True)
        session.commit()
    assert ClientMode  # managed by default: the agency schedules
    channel_id = connect(assigned, handle="bluebell")
    staff_api = Api(client, make_api_token(agency, staff))
    owner_api = Api(client, make_api_token(agency, owner))

    assert [c["id"] for c in staff_api("GET", "/clients").json["data"]] == [assigned.id]
    assert {c["id"] for c in owner_api("GET", "/clients").json["data"]} == {assigned.id, other.id}
    created = staff_api("POST", f"/clients/{assigned.id}/posts", post_body(channel_id))
    assert created.status_code == 201, created.json
    assert staff_api("GET", f"/clients/{assigned.id}/workspace").json["agency"] == "Northwind"
    assert staff_api("GET", f"/clients/{other.id}/posts").status_code == 404
    assert owner_api("GET", f"/clients/{other.id}/posts").status_code == 200
    assert staff_api("GET", "/posts").json["data"] == []  # the agency's own workspace has none

    with app_context(), system_session() as session:
        entries = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.tenant_id == assigned.id)).all()
    assert any("API: Create a post" in e for e in entries)


def test_openapi_document_and_docs_page(client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    spec = document.json
    assert spec["openapi"] == "3.1.0"
    assert {"get", "post"} <= set(spec["paths"]["/posts"])
    assert spec["paths"]["/clients/{client_id}/posts"]["post"]["operationId"] == "create_post_for_client"
    assert len([1 for p in spec["paths"].values() for _ in p]) == len(api.served())
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"Idempotency-Key" in docs.data and b"Create a post" in docs.data
    unknown = client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    wrong_method = client.put("/api/v1/posts")
    assert wrong_method.status_code == 405 and wrong_method.mimetype == "application/problem+json"


def test_the_same_key_sent_twice_at_once_still_makes_one_post(shop, app):
    import threading

    import httpx

    from tests.live_server import serving

    body = post_body(shop["channel_id"])
    headers = {"Authorization": f"Bearer {shop['api'].token}", "Idempotency-Key": "twice-at-once"}
    answers: list[httpx.Response] = []
    with serving(app) as base_url:
        start = threading.Barrier(2)

        def send() -> None:
            start.wait()
            answers.append(httpx.post(f"{base_url}/api/v1/posts", json=body, headers=headers, timeout=30))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    with app_context(), system_session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 1


def test_another_agencys_token_cannot_reach_a_client(app, client):
    from tenants.models import TenantKind
    from tests.factories import make_tenant

    owner, rival_owner = make_user(), make_user()
    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=owner)
    rival = make_tenant("Southwind", kind=TenantKind.AGENCY, owner=rival_owner)
    customer = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency)
    rival_api = Api(client, make_api_token(rival, rival_owner))
    assert rival_api("GET", f"/clients/{customer.id}/posts").status_code == 404
    assert rival_api("GET", f"/clients/{agency.id}/posts").status_code == 404  # an agency is no client
    assert rival_api("GET", "/clients").json["data"] == []
    assert Api(client, make_api_token(agency, owner))("GET", f"/clients/{customer.id}/posts").status_code == 200


def test_a_wrong_type_in_any_field_of_any_body_is_named(shop):
    """Every field of every JSON body, given an object where it expects something else (or a bad object)."""
    tried = 0
    for op, path in api.served():
        if op.body is None or path.startswith("/clients/"):
            continue
        url = path.format(post_id=1, channel_id=shop["channel_id"], slot_id=1, media_id=1)
        for name, info in op.body.model_fields.items():
            field = info.alias or name
            body = {**VALID_BODIES[op.body.__name__], field: {"wrong": ["type"]}}
            response = shop["api"](op.method, url, json=body)
            assert response.status_code == 422, f"{op.method} {url} {field}: {response.status_code}"
            fields = [e["field"] for e in response.json["errors"]]
            assert fields and all(f == field or f.startswith(f"{field}.") for f in fields), (url, field, fields)
            tried += 1
    assert tried >= 25


def test_a_post_already_sent_cannot_be_changed(shop):
    api = shop["api"]
    post = api("POST", "/posts", post_body(shop["channel_id"])).json
    with app_context(), system_session() as session:
        session.execute(sa.text("UPDATE post_targets SET state = 'published', attempt_count = 1"))
        session.commit()
    response = api("PATCH", f"/posts/{post['id']}", {"text": "Too late"})
    assert response.status_code == 409
    assert "can no longer be edited" in response.json["detail"]
    assert api("GET", f"/posts/{post['id']}").json["text"] == post["text"]


def test_an_oversized_upload_is_a_problem_not_a_page(shop, app):
    previous = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = shop["api"]("POST", "/media", data={"file": (io.BytesIO(b"x" * 5000), "big.gif")})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = previous
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_a_managed_clients_own_people_approve_but_do_not_schedule(app, client):
    from tenants.models import TenantKind
    from tests.factories import make_tenant

    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=make_user())
    client_owner = make_user()
    customer = make_tenant("Bluebell", kind=TenantKind.CLIENT, managed_by=agency, owner=client_owner)
    channel_id = connect(customer, handle="bluebell")
    own = Api(client, make_api_token(customer, client_owner))
    refused = own("POST", "/posts", post_body(channel_id))
    assert refused.status_code == 403 and "agency" in refused.json["detail"]
    assert own("GET", "/posts").status_code == 200


def test_an_agency_creates_a_client_and_acts_in_it(app, client):
    from tenants.models import Tenant, TenantKind
    from tests.factories import make_tenant

    owner = make_user()
    agency = make_tenant("Northwind", kind=TenantKind.AGENCY, owner=owner, timezone="Europe/London")
    api = Api(client, make_api_token(agency, owner))
    created = api("POST", "/clients", {"name": "Bluebell Bakery"}, headers={"Idempotency-Key": "bluebell"})
    assert created.status_code == 201, created.json
    assert created.json["mode"] == "managed" and created.json["timezone"] == "Europe/London"
    again = api("POST", "/clients", {"name": "Bluebell Bakery"}, headers={"Idempotency-Key": "bluebell"})
    assert again.json == created.json
    with app_context(), system_session() as session:
        assert (
            session.scalar(sa.select(sa.func.count()).select_from(Tenant).where(Tenant.managed_by_id == agency.id)) == 1
        )
    assert api("GET", f"/clients/{created.json['id']}/workspace").json["name"] == "Bluebell Bakery"
    assert api("POST", "/clients", {"name": "x", "timezone": "Nowhere/Else"}).json["errors"][0]["field"] == "timezone"

    tenant, direct_owner = make_workspace()
    refused = Api(client, make_api_token(tenant, direct_owner))("POST", "/clients", {"name": "Nope"})
    assert refused.status_code == 403


def test_a_post_reads_as_its_schema_writes_it_with_what_the_composer_sees(shop):
    """Posts are shaped from SQL documents, not through the model: they must still be `PostOut` to the letter,
    with the channels, overrides and media the composer reads from the same post."""
    from saas.api.schemas import PostOut
    from saas.posts import service

    api = shop["api"]
    channel_id = connect(shop["tenant"], network="mastodon", handle="first")  # Mastodon takes threads
    second = connect(shop["tenant"], network="mastodon", handle="second")
    media = api("POST", "/media", data={"file": (io.BytesIO(gif()), "a.gif"), "alt": "a loaf"}).json["id"]
    rich = {
        "text": "Fresh bread at nine",
        "channel_ids": [channel_id, second],
        "channel_overrides": [{"channel_id": second, "text": "Bread!", "media_ids": []}],
        "media_ids": [media],
        "thread": ["and buns", "and cake"],
        "tags": ["bread"],
        "notes": "ask the baker",
        "first_comment": "Open till six",
        "recurrence": {"freq": "weekly", "interval": 2, "weekdays": [0, 3], "count": 5},
    }
    summer = datetime.now(UTC).year + 1  # 1 July next year: ahead, within two years, Paris on +02:00
    scheduled = api("POST", "/posts", {**rich, "scheduled_at": f"{summer}-07-01T09:00:00.25+02:00"}).json
    assert "id" in scheduled, scheduled
    draft = api("POST", "/posts", {**rich, "draft": True}).json
    listed = api("GET", "/posts").json["data"]
    assert [p["id"] for p in listed] == [scheduled["id"], draft["id"]]
    for post, read in zip((scheduled, draft), listed, strict=True):
        assert read == post == api("GET", f"/posts/{post['id']}").json
        assert PostOut.model_validate(post).model_dump(mode="json") == post  # every value as pydantic writes it
        with app_context(), db.new_session() as session:
            from tenants import bind_tenant

            bind_tenant(session, shop["tenant"].id)
            row = session.get(Post, post["id"])
            extras = service.extras_of(row)
            assert post["channel_ids"] == service.channel_ids_of(row) == [channel_id, second]
            assert {o["channel_id"]: o["text"] for o in post["channel_overrides"]} == {second: "Bread!"}
            assert extras.overrides == {second: "Bread!"}
            assert {o["channel_id"]: o["media_ids"] for o in post["channel_overrides"]} == {
                cid: list(ids) for cid, ids in extras.media_overrides.items()
            }
            assert post["media_ids"] == list(extras.media_ids) == [media]
            assert post["thread"] == list(extras.thread)
            assert post["recurrence"] == {**extras.repeat.as_json(), "until": None}
    assert scheduled["scheduled_at"] == f"{summer}-07-01T07:00:00.250000Z"
    assert scheduled["scheduled_at_local"] == f"{summer}-07-01T09:00:00.250000+02:00"
    assert scheduled["targets"][0]["scheduled_at"] == f"{summer}-07-01T07:00:00.250000Z"


def test_post_pages_filter_their_tenant_themselves_not_only_row_level_security(app, shop):
    """The page statement is compiled once and run as text, without the ORM's tenant criteria: it must name
    its tenant itself. Run as the system role (which row-level security lets through), it still does."""
    from saas.posts import listing
    from tenants import bind_tenant

    stranger, stranger_owner = make_workspace(name="Stranger Co")
    Api(shop["api"].client, make_api_token(stranger, stranger_owner))("POST", "/posts", post_body(connect(stranger)))
    mine = shop["api"]("POST", "/posts", post_body(shop["channel_id"])).json["id"]
    with app_context(), so.Session(bind=app.extensions["db_system_engine"]) as session:
        bind_tenant(session, shop["tenant"].id)
        assert [p.id for p in listing.page(session, listing.PageFilters(), None, 50)] == [mine]
        assert listing.one(session, mine) is not None
        stranger_post = session.scalar(sa.text("SELECT id FROM posts WHERE tenant_id = :t"), {"t": stranger.id})
        assert stranger_post is not None  # the system role does see it…
        assert listing.one(session, stranger_post) is None  # …and the statement still does not return it


def test_api_changes_are_in_the_audit_log_with_their_kind_and_refusals_are_not(shop):
    from saas.api.registry import AUDIT_KINDS

    assert {op.tag for op in api.operations} <= set(AUDIT_KINDS)  # no operation's change files as "Other"
    call = shop["api"]
    assert call("POST", "/posts", post_body(shop["channel_id"])).status_code == 201
    assert call("POST", f"/channels/{shop['channel_id']}/pause").status_code == 200
    assert call("POST", "/posts", post_body(shop["channel_id"], text="")).status_code == 422
    assert call("GET", "/posts").status_code == 200
    with app_context(), system_session() as session:
        entries = session.execute(
            sa.select(AuditEntry.kind, AuditEntry.action).where(AuditEntry.tenant_id == shop["tenant"].id)
        ).all()
    assert sorted(entries) == [
        ("channels", "API: Pause a channel (token “test”)"),
        ("posts", "API: Create a post (token “test”)"),
    ]
