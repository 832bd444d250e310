"""Each plan limit: refused where people act, with which limit and how to raise it; held at dispatch if over anyway."""

from __future__ import annotations

import sqlalchemy as sa

from saas import db
from saas.channels.models import Channel
from saas.posts.models import PostTarget, TargetState
from tenants.models import Invitation
from tests.billing.conftest import subscribe
from tests.factories import PASSWORD, app_context, make_workspace


def _count(model, tenant_id: int) -> int:
    with app_context(), db.new_session(info={"system": True}) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(model.tenant_id == tenant_id))


def test_a_fourth_channel_on_the_free_trial_is_refused(client, stripe, pipeline):
    tenant, owner = make_workspace()
    for handle in ("one", "two", "three"):
        pipeline.connect(tenant, handle)
    client.log_in(owner.email, PASSWORD)

    response = client.submit(f"/w/{tenant.slug}/channels/sandbox", page=f"/w/{tenant.slug}/channels")

    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "The Free trial plan includes 3 channels, and this workspace has used 3." in page
    assert "choose a paid plan to raise it" in page
    assert _count(Channel, tenant.id) == 3


def test_seats_are_limited_but_reviewers_and_viewers_are_free(client, stripe):
    tenant, owner = make_workspace()  # the owner takes one of the trial's two seats
    client.log_in(owner.email, PASSWORD)
    team = f"/w/{tenant.slug}/team"

    assert (
        client.submit(f"{team}/invitations", {"email": "ed@example.com", "role": "editor"}, page=team).status_code
        == 302
    )
    refused = client.submit(f"{team}/invitations", {"email": "al@example.com", "role": "admin"}, page=team)
    assert refused.status_code == 422
    assert "The Free trial plan includes 2 seats" in refused.get_data(as_text=True)
    for role in ("reviewer", "viewer"):
        response = client.submit(f"{team}/invitations", {"email": f"{role}@example.com", "role": role}, page=team)
        assert response.status_code == 302
    with app_context(), db.new_session(info={"system": True}) as session:
        invited = set(session.scalars(sa.select(Invitation.email).where(Invitation.tenant_id == tenant.id)))
    assert invited == {"ed@example.com", "reviewer@example.com", "viewer@example.com"}


def test_posts_beyond_the_month_allowance_are_refused(app, client, stripe, pipeline, monkeypatch):
    monkeypatch.setitem(app.config, "BILLING_PLANS", {"trial": {"posts_per_month": 2}})  # limits are configuration
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "busy")
    pipeline.schedule(tenant, owner, [channel], "First", in_seconds=60)
    pipeline.schedule(tenant, owner, [channel], "Second", in_seconds=120)
    client.log_in(owner.email, PASSWORD)

    response = client.submit(
        f"/w/{tenant.slug}/posts/new",
        {"text": "Third", "channels": str(channel.id), "publish_now": "y"},
        page=f"/w/{tenant.slug}/posts/new",
    )

    assert response.status_code == 422
    assert "The Free trial plan includes 2 scheduled posts this month, and this workspace has used 2." in (
        response.get_data(as_text=True)
    )


def test_work_over_the_limit_after_a_downgrade_is_held_at_dispatch(app, client, stripe, pipeline, network, monkeypatch):
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    subscribe(client, stripe, tenant)  # Pro: ten channels, unlimited posts
    channels = [pipeline.connect(tenant, handle) for handle in ("first", "second", "third")]
    early = pipeline.schedule(tenant, owner, channels[:2], "Early", in_seconds=-60)
    late = pipeline.schedule(tenant, owner, channels[:2], "Late", in_seconds=-30)
    third = pipeline.schedule(tenant, owner, [channels[2]], "On the third channel", in_seconds=-90)

    # Pro shrinks to two channels and one post a month (a downgrade), with all of that already scheduled.
    monkeypatch.setitem(app.config, "BILLING_PLANS", {"pro": {"channels": 2, "posts_per_month": 1}})
    pipeline.run_once()

    with app_context(), db.new_session(info={"system": True}) as session:
        states = {
            (t.post_id, t.channel_id): (t.state, t.blocked_reason, t.last_error or "")
            for t in session.scalars(sa.select(PostTarget).where(PostTarget.tenant_id == tenant.id))
        }
    third_target = states[(third, channels[2].id)]
    assert third_target[:2] == (TargetState.BLOCKED, "billing")
    assert "includes 2 channels" in third_target[2]
    # The month's first post keeps its place; the later one is beyond the allowance.
    assert states[(early, channels[0].id)][0] is TargetState.PUBLISHED
    late_target = states[(late, channels[0].id)]
    assert late_target[:2] == (TargetState.BLOCKED, "billing") and "1 scheduled post a month" in late_target[2]
    assert sorted(p.text for p in network.posts()) == ["Early", "Early"]
