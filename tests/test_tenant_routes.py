"""Every workspace route, tried from another tenant: 404, and the other tenant's data unchanged.

The walk covers `app.url_map` itself, so a new route under /w/<slug>/ is tried
the day it is added; a route with a new kind of id fails until OBJECT_IDS
says which of the victim's objects to aim it at.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from publishers.base import Credentials, Profile
from saas import db
from saas.api import tokens as api_tokens
from saas.api.models import ApiToken
from saas.approvals import service as approvals
from saas.approvals.models import PostComment, ReviewLink
from saas.channels import service as channel_service
from saas.channels.models import Channel
from saas.media import service as media_service
from saas.posts import ical, queue
from saas.posts import service as post_service
from saas.posts.models import Post, PostTarget
from saas.webhooks import service as webhook_service
from saas.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants import service as tenant_service
from tenants import system_session
from tenants.models import Invitation, Membership, Role, Tenant
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40)).save(out, format="GIF")
    return out.getvalue()


_TINY_GIF = _gif()


def _victim(**tenant_kwargs):
    """Tenant B with one object of every kind a workspace route can name."""
    tenant, owner = make_workspace(name="Victim Co", **tenant_kwargs)
    member = make_user()
    add_member(tenant, member, Role.EDITOR)
    with app_context(), db.new_session() as session:
        tenant_service.bind_tenant(session, tenant.id)
        invitation, _ = tenant_service.invite(session, email="pending@example.com", role=Role.VIEWER, invited_by=owner)
        channel = channel_service.connect(
            session,
            "sandbox",
            Profile(remote_id="acct_victim", handle="victim", display_name="Victim Co"),
            Credentials(access_token="victim-token"),
        )
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text="Victim's secret launch",
            channel_ids=[channel.id],
            schedule=post_service.Schedule(
                publish_now=False,
                local_time=(datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None, microsecond=0),
                timezone="UTC",
            ),
        )
        media = media_service.upload(
            session, filename="victim.gif", data=_TINY_GIF, alt="Victim's secret", uploaded_by=owner.id
        )
        slot = queue.add_slot(session, channel.id, 0, time(9, 0))
        feed, _token = ical.create(session, owner.id, datetime.now(UTC))
        _raw, link = approvals.issue_link(session, owner.id, [post.id], owner.id)
        token, _secret = api_tokens.create(
            session, name="Victim's CMS", scopes=["read"], user_id=owner.id, created_by_id=owner.id
        )
        endpoint, _secret = webhook_service.create(
            session, webhook_service.EndpointInput("https://victim.example/hooks", ("post.published",)), owner.id
        )
        delivery = webhook_service.send_test(session, endpoint.id)
        session.commit()
        membership_id = session.scalar(sa.select(Membership.id).where(Membership.user_id == member.id))
        target_id = session.scalar(sa.select(PostTarget.id).where(PostTarget.post_id == post.id))
    return tenant, {
        "membership_id": membership_id,
        "invitation_id": invitation.id,
        "channel_id": channel.id,
        "post_id": post.id,
        "target_id": target_id,
        "action": "cancel",
        "media_id": media.id,
        "slot_id": slot.id,
        "feed_id": feed.id,
        "link_id": link.id,
        "token_id": token.id,
        "client_id": tenant.id,
        "endpoint_id": endpoint.id,
        "delivery_id": delivery.id,
    }


def _snapshot(tenant_id: int) -> dict[str, list[tuple]]:
    with app_context(), system_session() as session:
        return {
            "tenant": [
                tuple(session.execute(sa.select(Tenant.name, Tenant.timezone).where(Tenant.id == tenant_id)).one())
            ],
            "memberships": [
                tuple(r)
                for r in session.execute(
                    sa.select(Membership.id, Membership.user_id, Membership.role)
                    .where(Membership.tenant_id == tenant_id)
                    .order_by(Membership.id)
                )
            ],
            "channels": [
                tuple(r)
                for r in session.execute(
                    sa.select(Channel.id, Channel.health, Channel.credentials_sealed).where(
                        Channel.tenant_id == tenant_id
                    )
                )
            ],
            "targets": [
                tuple(r)
                for r in session.execute(
                    sa.select(PostTarget.id, PostTarget.state, PostTarget.idempotency_key, PostTarget.remote_url).where(
                        PostTarget.tenant_id == tenant_id
                    )
                )
            ],
            "posts": [
                tuple(r)
                for r in session.execute(sa.select(Post.id, Post.text, Post.state).where(Post.tenant_id == tenant_id))
            ],
            "review_links": [
                tuple(r)
                for r in session.execute(
                    sa.select(ReviewLink.id, ReviewLink.revoked_at).where(ReviewLink.tenant_id == tenant_id)
                )
            ],
            "api_tokens": [
                tuple(r)
                for r in session.execute(
                    sa.select(ApiToken.id, ApiToken.name, ApiToken.revoked_at).where(ApiToken.tenant_id == tenant_id)
                )
            ],
            "webhook_endpoints": [
                tuple(r)
                for r in session.execute(
                    sa.select(
                        WebhookEndpoint.id,
                        WebhookEndpoint.url,
                        WebhookEndpoint.events,
                        WebhookEndpoint.enabled,
                        WebhookEndpoint.secret_sealed,
                    ).where(WebhookEndpoint.tenant_id == tenant_id)
                )
            ],
            "webhook_deliveries": [
                tuple(r)
                for r in session.execute(
                    sa.select(WebhookDelivery.id, WebhookDelivery.state, WebhookDelivery.next_attempt_at).where(
                        WebhookDelivery.tenant_id == tenant_id
                    )
                )
            ],
            "comments": [
                tuple(r) for r in session.execute(sa.select(PostComment.id).where(PostComment.tenant_id == tenant_id))
            ],
            "invitations": [
                tuple(r)
                for r in session.execute(
                    sa.select(
                        Invitation.id, Invitation.email, Invitation.role, Invitation.revoked_at, Invitation.accepted_at
                    )
                    .where(Invitation.tenant_id == tenant_id)
                    .order_by(Invitation.id)
                )
            ],
        }


def _workspace_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/w/<slug>")]


def _form_data(rule_path: str) -> dict[str, str]:
    # Plausible input for every form, so a request is not turned away for bad input alone.
    return {
        "name": "Hijacked",
        "timezone": "UTC",
        "email": "attacker@example.com",
        "role": "owner",
        "text": "Hijacked post",
        "channels": "1",
        "publish_now": "y",
        "url": "https://evil.example/x",
    }


def _requests(app, slug: str, ids: dict[str, int]):
    for rule in _workspace_rules(app):
        values = {"slug": slug}
        for arg in rule.arguments - {"slug"}:
            if arg not in ids:
                pytest.fail(f"{rule.rule} takes <{arg}>: add the victim's {arg} to _victim() so it is walked")
            values[arg] = ids[arg]
        path = app.url_map.bind("localhost").build(rule.endpoint, values)
        for method in sorted(rule.methods & set(METHODS)):
            yield rule, method, path


def test_every_workspace_route_is_404_for_another_tenants_member(app, client):
    victim, ids = _victim()
    _intruder_tenant, intruder = make_workspace(name="Intruder Co")
    before = _snapshot(victim.id)
    client.log_in(intruder.email, PASSWORD)

    tried = 0
    for rule, method, path in _requests(app, victim.slug, ids):
        data = {"csrf_token": client.csrf_token("/account")} if method != "GET" else None
        if data is not None:
            data.update(_form_data(rule.rule))
        response = client.open(path, method=method, data=data)
        assert response.status_code == 404, f"{method} {path} answered {response.status_code}"
        assert b"Victim Co" not in response.data
        tried += 1

    assert tried >= len(_workspace_rules(app))
    assert _snapshot(victim.id) == before


def test_own_workspace_routes_refuse_another_tenants_object_ids(app, client):
    """Inside your own workspace, an id that belongs to another tenant is still 404."""
    victim, ids = _victim()
    own_tenant, owner = make_workspace(name="Own Co")
    before = _snapshot(victim.id)
    client.log_in(owner.email, PASSWORD)

    tried = 0
    for rule, method, path in _requests(app, own_tenant.slug, ids):
        if not rule.arguments - {"slug"}:
            continue  # no object id in this route: nothing of the victim's to name
        data = {"csrf_token": client.csrf_token("/account"), **_form_data(rule.rule)} if method != "GET" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == 404, f"{method} {path} answered {response.status_code}"
        tried += 1

    assert tried > 0
    assert _snapshot(victim.id) == before


def test_anonymous_visitors_are_sent_to_log_in(app, client):
    victim, ids = _victim()
    for _rule, method, path in _requests(app, victim.slug, ids):
        if method != "GET":
            continue
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_unknown_workspace_is_404_like_a_foreign_one(client):
    _tenant, user = make_workspace()
    client.log_in(user.email, PASSWORD)
    assert client.get("/w/no-such-workspace/calendar").status_code == 404
