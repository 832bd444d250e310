"""Each webhook event comes from the real code path that causes it, once, in the transaction of the change."""

from __future__ import annotations

import json

import sqlalchemy as sa

from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, StepRule, Verdict
from saas.posts import service as post_service
from saas.posts.models import Post, TargetState
from saas.publishing.jobs import publish_batch
from saas.webhooks import events as webhook_events
from saas.webhooks import signing
from tenants import tenant_session
from tenants.models import Role
from tests import webhook_helpers
from tests.factories import PASSWORD, add_member, app_context, make_user, make_workspace

receiver, webhooks = webhook_helpers.receiver, webhook_helpers.webhooks  # fixtures
ALL = tuple(webhook_events.EVENT_TYPES)


def _types(webhooks, tenant):
    return [e.type for e in webhooks.events(tenant)]


def test_publishing_through_the_network_emits_scheduled_then_published_and_delivers_it(
    pipeline, network, webhooks, receiver
):
    tenant, owner = make_workspace()
    _id, secret = webhooks.add_endpoint(tenant, receiver.url, ("post.scheduled", "post.published"))
    channel = pipeline.connect(tenant, "bakery")
    post_id = pipeline.schedule(tenant, owner, [channel], "Rye loaves today")

    pipeline.run_once()
    webhooks.deliver()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert _types(webhooks, tenant) == ["post.scheduled", "post.published"]
    scheduled, published = receiver.received
    for request in receiver.received:
        signing.verify(secret, request.headers, request.body)
    assert json.loads(scheduled.body)["data"]["text"] == "Rye loaves today"
    data = json.loads(published.body)["data"]
    assert data["post_id"] == post_id and data["target_id"] == target.id
    assert data["remote_url"] == target.remote_url and data["state"] == "published"
    assert data["channel"] == {"id": channel.id, "network": "sandbox", "handle": "bakery"}
    assert data["error"] is None


def test_post_published_is_emitted_once_however_often_the_job_runs(pipeline, network, webhooks, receiver, app):
    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, receiver.url, ("post.published",))
    channel = pipeline.connect(tenant, "twice")
    network.controls.add_fault("commit_then_drop", method="POST", path="/api/v1/posts")  # live, answer lost
    pipeline.schedule(tenant, owner, [channel])
    report = pipeline.dispatch()
    claim = pipeline.targets(tenant)[0].claim_token
    pipeline.work()
    assert _types(webhooks, tenant) == []  # outcome unknown: not published as far as we know

    pipeline.make_due_now(tenant)
    pipeline.run_once()  # confirmed with the same key: published, once
    [target] = pipeline.targets(tenant)
    with app.app_context():  # the first job delivered again by RQ: its claim is gone, nothing is recorded
        assert publish_batch(claim, [[tenant.id, target.id]]) == {"not_ours": 1}
    assert report.claimed == 1 and target.state is TargetState.PUBLISHED
    assert _types(webhooks, tenant) == ["post.published"]
    assert len(network.posts()) == 1


def test_a_refused_post_emits_post_failed(pipeline, network, webhooks):
    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("post.failed", "post.published"))
    channel = pipeline.connect(tenant, "strict")
    network.controls.add_fault(
        "status", method="POST", path="/api/v1/posts", status=422, body={"error": "Text contains a banned word"}
    )
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()
    [event] = webhooks.events(tenant)
    assert event.type == "post.failed"
    assert "banned word" in event.payload["error"] and event.payload["state"] == "failed"


def test_an_outcome_nobody_can_check_emits_post_unconfirmed(pipeline, network, webhooks):
    from tests.publishing.test_pipeline import _age_unknown_outcome

    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ALL)
    channel = pipeline.connect(tenant, "murky")
    network.controls.add_fault("refuse", method="POST", path="/api/v1/posts")
    pipeline.schedule(tenant, owner, [channel], "Did it go?")
    pipeline.run_once()
    _age_unknown_outcome(tenant)
    network.controls.add_fault("status", method="GET", path="/api/v1/posts", status=503, times=5)
    pipeline.run_once()

    assert _types(webhooks, tenant) == ["post.scheduled", "post.unconfirmed"]
    assert webhooks.events(tenant)[-1].payload["state"] == "unconfirmed"


def test_marking_an_unconfirmed_post_published_emits_post_published(pipeline, network, webhooks):
    from tests.publishing.test_pipeline import _age_unknown_outcome

    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "manual")
    network.controls.add_fault("refuse", method="POST", path="/api/v1/posts")
    post_id = pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()
    _age_unknown_outcome(tenant)
    network.controls.add_fault("status", method="GET", path="/api/v1/posts", status=503, times=5)
    pipeline.run_once()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("post.published",))
    [target] = pipeline.targets(tenant)
    with app_context(), tenant_session(tenant.id) as session:
        post_service.mark_published(session, post_id, target.id, "https://sandbox.example/p/1")
        session.commit()
    [event] = webhooks.events(tenant)
    assert event.type == "post.published" and event.payload["remote_url"] == "https://sandbox.example/p/1"


def test_revoked_access_emits_channel_needs_reconnect_once(pipeline, network, webhooks):
    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("channel.needs_reconnect",))
    channel = pipeline.connect(tenant, "gone")
    network.revoke_account("gone")
    for n in range(3):
        pipeline.schedule(tenant, owner, [channel], f"Post {n}")
    pipeline.run_once()
    pipeline.run_once()

    [event] = webhooks.events(tenant)
    assert event.type == "channel.needs_reconnect"
    assert event.payload["channel"]["handle"] == "gone" and event.payload["reason"]


def test_approval_events_follow_the_decisions(pipeline, network, webhooks):
    tenant, owner = make_workspace()
    reviewer = make_user(name="Rita Reviewer")
    add_member(tenant, reviewer, Role.REVIEWER)
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ALL)
    channel = pipeline.connect(tenant, "approved")
    with app_context(), tenant_session(tenant.id) as session:
        approvals.set_policy(
            session, ApprovalMode.REQUIRED, [approvals.Step("Client", StepRule.ANY, roles=(Role.REVIEWER.value,))]
        )
        session.commit()
    post_id = pipeline.schedule(tenant, owner, [channel], "Needs a yes")  # required: submitted at once

    def decide(verdict, comment=""):
        with app_context(), tenant_session(tenant.id) as session:
            revision = session.get(Post, post_id).revision
            approvals.decide(session, post_id, user_id=reviewer.id, verdict=verdict, revision=revision,
                             comment=comment)  # fmt: skip
            session.commit()

    decide(Verdict.CHANGES_REQUESTED, "Say rye, not wheat")
    with app_context(), tenant_session(tenant.id) as session:
        approvals.submit(session, [post_id], owner.id)
        session.commit()
    decide(Verdict.APPROVED)

    events = webhooks.events(tenant)
    assert [e.type for e in events] == [
        "post.scheduled",
        "approval.requested",
        "approval.changes_requested",
        "approval.requested",
        "approval.approved",
    ]
    assert events[2].payload["comment"] == "Say rye, not wheat" and events[2].payload["by"] == "Rita Reviewer"
    assert events[4].payload["step"] == "Client" and events[4].payload["post_id"] == post_id


def test_a_change_rolled_back_emits_nothing(pipeline, network, webhooks):
    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("post.scheduled",))
    channel = pipeline.connect(tenant, "undo")
    with app_context(), tenant_session(tenant.id) as session:
        post_service.schedule_post(
            session, author_id=owner.id, text="Never mind", channel_ids=[channel.id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
        )  # fmt: skip
        session.rollback()
    assert webhooks.events(tenant) == []


def test_moving_a_post_emits_post_scheduled_for_the_new_time(pipeline, network, webhooks):
    from datetime import UTC, datetime, timedelta

    tenant, owner = make_workspace()
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("post.scheduled",))
    channel = pipeline.connect(tenant, "mover")
    post_id = pipeline.schedule(tenant, owner, [channel], in_seconds=3600)
    later = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0, second=0)
    with app_context(), tenant_session(tenant.id) as session:
        post_service.move_post(session, post_id, post_service.Schedule(False, later, "UTC"))
        session.commit()
    first, moved = webhooks.events(tenant)
    assert (first.payload["revision"], moved.payload["revision"]) == (1, 2)
    assert moved.payload["local_time"] == later.isoformat()


def test_other_tenants_endpoints_get_nothing(pipeline, network, webhooks, receiver):
    tenant, owner = make_workspace()
    other, _ = make_workspace()
    webhooks.add_endpoint(other, receiver.url, ALL)
    channel = pipeline.connect(tenant, "mine")
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()
    webhooks.deliver()
    assert webhooks.events(other) == [] and receiver.received == []
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(sa.text("webhook_events"))) == 0


def test_the_next_occurrence_of_a_repeating_post_emits_post_scheduled(app, client, pipeline, network, webhooks):
    from datetime import timedelta

    from saas.posts.recurrence import advance_all
    from tests.publishing.test_recurring_posts import _posts, compose_repeating, tomorrow_9

    tenant, owner = make_workspace(timezone="Europe/Berlin")
    channel = pipeline.connect(tenant, "club")
    webhooks.add_endpoint(tenant, "http://127.0.0.1:9/unused", ("post.scheduled",))
    client.log_in(owner.email, PASSWORD)
    compose_repeating(client, tenant, channel, tomorrow_9(), repeat="weekly", repeat_every="1")
    [first] = _posts(tenant)
    with app.app_context():
        assert advance_all(first.scheduled_at + timedelta(minutes=1)) == 1
    _first, second = _posts(tenant)
    events = webhooks.events(tenant)
    assert [e.payload["post_id"] for e in events] == [first.id, second.id]
    assert events[1].payload["scheduled_at"] == second.scheduled_at.isoformat()
