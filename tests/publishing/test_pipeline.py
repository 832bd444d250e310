"""A post's way from the calendar to the network: claimed once, published once, every attempt logged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from saas.channels.models import ChannelHealth
from saas.posts.models import AttemptOutcome, PostState, TargetState
from saas.publishing.jobs import publish_batch
from tenants import tenant_session
from tests.factories import app_context, make_workspace


def test_publish_now_reaches_the_network_once(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "bluebell")
    post_id = pipeline.schedule(tenant, owner, [channel], "Croissants are out of the oven")

    report = pipeline.run_once()

    assert report.claimed == 1
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert target.remote_id and target.remote_url
    [attempt] = target.attempts
    assert attempt.outcome is AttemptOutcome.PUBLISHED and attempt.finished_at is not None
    [sent] = network.posts("bluebell")
    assert sent.text == "Croissants are out of the oven"
    assert network.committed_count_by_key() == {("bluebell", target.idempotency_key): 1}
    with app_context(), tenant_session(tenant.id) as session:
        from saas.posts.models import Post

        assert session.get(Post, post_id).state is PostState.PUBLISHED


def test_future_post_is_not_claimed_before_its_time(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "later")
    pipeline.schedule(tenant, owner, [channel], in_seconds=3600)
    assert pipeline.run_once().claimed == 0
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert network.posts() == []


def test_a_target_is_claimed_once_however_often_the_dispatcher_runs(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "once")
    pipeline.schedule(tenant, owner, [channel])
    assert pipeline.dispatch().claimed == 1
    assert pipeline.dispatch().claimed == 0
    pipeline.work()
    assert len(network.posts()) == 1


def test_rate_limit_pauses_the_channel_until_the_reset(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "busy")
    network.controls.add_fault(
        "status",
        method="POST",
        path="/api/v1/posts",
        status=429,
        body={"error": "Too many requests"},
        headers={"Retry-After": "120"},
    )
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert target.attempts[0].outcome is AttemptOutcome.RATE_LIMITED
    assert target.channel.paused_until is not None
    assert target.due_at >= target.channel.paused_until
    # While paused, the dispatcher leaves the channel alone.
    assert pipeline.dispatch().claimed == 0

    pipeline.make_due_now(tenant)  # the reset has passed
    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert len(network.posts()) == 1


def test_network_down_before_sending_is_retried(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "flaky")
    pipeline.schedule(tenant, owner, [channel])
    network.stop()
    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert target.attempts[0].outcome is AttemptOutcome.RETRY
    assert target.outcome_unknown_since is None  # nothing reached the network

    network.start()
    pipeline.make_due_now(tenant)
    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert len(network.posts()) == 1


def test_lost_response_is_retried_with_the_same_key_and_posts_once(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "dropped")
    network.controls.add_fault("commit_then_drop", method="POST", path="/api/v1/posts")
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.SCHEDULED
    assert target.attempts[0].outcome is AttemptOutcome.UNKNOWN
    assert target.outcome_unknown_since is not None
    assert len(network.posts()) == 1  # the network did publish it

    pipeline.make_due_now(tenant)
    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert len(network.posts()) == 1
    assert network.duplicates() == {}
    assert "nothing was posted twice" in target.attempts[-1].message


def _age_unknown_outcome(tenant, hours=2):
    """As if the unknown attempt happened before the network's idempotency window."""
    from saas.posts.models import PostTarget

    with app_context(), tenant_session(tenant.id) as session:
        session.execute(
            sa.update(PostTarget).values(
                outcome_unknown_since=sa.func.now() - sa.text(f"interval '{hours} hours'"), due_at=sa.func.now()
            )
        )
        session.commit()


def test_unknown_outcome_past_the_key_window_is_read_back(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "readback")
    network.controls.add_fault("commit_then_drop", method="POST", path="/api/v1/posts")
    pipeline.schedule(tenant, owner, [channel], "Read me back")
    pipeline.run_once()
    _age_unknown_outcome(tenant)
    network.forget_idempotency_keys()

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert target.remote_id == network.posts()[0].id
    assert len(network.posts()) == 1


def test_read_back_with_an_expired_token_refreshes_it_once_and_finds_the_post(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "stale-readback")
    network.controls.add_fault("commit_then_drop", method="POST", path="/api/v1/posts")
    pipeline.schedule(tenant, owner, [channel], "Read me back later")
    pipeline.run_once()
    _age_unknown_outcome(tenant)
    network.forget_idempotency_keys()
    [target] = pipeline.targets(tenant)
    with app_context(), tenant_session(tenant.id) as session:
        from saas.channels import service as channel_service
        from saas.channels.models import Channel

        old = channel_service.load_credentials(session.get(Channel, channel.id))
    network.expire_token(old.access_token)

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert target.remote_id == network.posts()[0].id
    assert len(network.posts()) == 1
    assert len(network.journal.entries("POST", "/oauth/token")) == 1


def test_unknown_outcome_that_cannot_be_checked_becomes_unconfirmed_and_tells_people_once(pipeline, network, outbox):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "murky")
    network.controls.add_fault("refuse", method="POST", path="/api/v1/posts")  # maybe sent, no answer
    pipeline.schedule(tenant, owner, [channel], "Did it go?")
    pipeline.run_once()
    _age_unknown_outcome(tenant)
    network.controls.add_fault(
        "status", method="GET", path="/api/v1/posts", status=503, times=5, body={"error": "maintenance"}
    )

    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.UNCONFIRMED
    assert "mark it as published or publish it again" in target.last_error
    assert [m["Subject"] for m in outbox.to(owner.email)] == ["We could not confirm a post to @murky"]
    assert network.posts() == []  # nothing was published blindly


def test_expired_token_is_refreshed_once_and_saved(pipeline, network):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "stale")
    from saas.channels import service as channel_service

    with app_context(), tenant_session(tenant.id) as session:
        from saas.channels.models import Channel

        old = channel_service.load_credentials(session.get(Channel, channel.id))
    network.expire_token(old.access_token)
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()

    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    with app_context(), tenant_session(tenant.id) as session:
        from saas.channels.models import Channel

        new = channel_service.load_credentials(session.get(Channel, channel.id))
    assert new.access_token != old.access_token


def test_revoked_access_blocks_the_channel_and_notifies_once(pipeline, network, outbox):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "gone")
    network.revoke_account("gone")
    for n in range(3):
        pipeline.schedule(tenant, owner, [channel], f"Post {n}")
    pipeline.run_once()
    pipeline.run_once()  # the rest are blocked at claim time: the channel is known to need reconnecting

    targets = pipeline.targets(tenant)
    assert {t.state for t in targets} == {TargetState.BLOCKED}
    assert targets[0].channel.health is ChannelHealth.NEEDS_RECONNECT
    assert [m["Subject"] for m in outbox.to(owner.email)] == ["Reconnect @gone to keep publishing"]
    assert network.posts() == []


def test_refused_post_fails_with_the_networks_reason(pipeline, network, outbox):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "strict")
    network.controls.add_fault(
        "status", method="POST", path="/api/v1/posts", status=422, body={"error": "Text contains a banned word"}
    )
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.FAILED
    assert "Text contains a banned word" in target.last_error
    assert outbox.last_to(owner.email)["Subject"] == "A post failed to publish to @strict"


def test_job_given_another_tenants_target_refuses(pipeline, network, app):
    tenant_a, owner_a = make_workspace()
    tenant_b, _ = make_workspace()
    channel = pipeline.connect(tenant_a, "victim")
    pipeline.schedule(tenant_a, owner_a, [channel])
    pipeline.dispatch()  # claimed for A
    [target] = pipeline.targets(tenant_a)
    with app.app_context():
        summary = publish_batch(target.claim_token, [[tenant_b.id, target.id]])
    assert summary == {"refused": 1}
    [after] = pipeline.targets(tenant_a)
    assert after.state is TargetState.QUEUED and after.attempts == []
    assert network.posts() == []


def test_stale_claim_is_recovered_and_published(pipeline, network):
    """The job for a claim never ran (e.g. Redis was wiped): after the lease, the target is due again."""
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "lost")
    pipeline.schedule(tenant, owner, [channel])
    pipeline.dispatch()
    pipeline.redis.flushdb()  # the job is gone
    from saas.posts.models import PostTarget

    with app_context(), tenant_session(tenant.id) as session:
        session.execute(sa.update(PostTarget).values(claimed_until=sa.func.now() - sa.text("interval '1 second'")))
        session.commit()
    report = pipeline.run_once()
    assert report.recovered == 1
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.PUBLISHED
    assert len(network.posts()) == 1


def test_a_finished_attempt_cannot_be_rewritten(pipeline, network):
    """The attempt log is evidence: the database itself refuses to change a closed attempt."""
    from saas.posts.models import PublishAttempt

    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "evidence")
    pipeline.schedule(tenant, owner, [channel])
    pipeline.run_once()
    with app_context(), tenant_session(tenant.id) as session:
        with pytest.raises(sa.exc.DBAPIError, match="is finished and cannot change"):
            session.execute(sa.update(PublishAttempt).values(outcome="failed"))
            session.flush()


def test_app_wide_rate_limit_pauses_the_whole_network_for_every_tenant(pipeline, network):
    from saas.channels.models import NetworkPause

    tenant_a, owner_a = make_workspace()
    tenant_b, owner_b = make_workspace()
    first = pipeline.connect(tenant_a, "first")
    other = pipeline.connect(tenant_b, "other")
    network.controls.add_fault(
        "status",
        method="POST",
        path="/api/v1/posts",
        status=429,
        body={"error": "Too many requests"},
        headers={"Retry-After": "300", "X-RateLimit-Scope": "app"},
    )
    pipeline.schedule(tenant_a, owner_a, [first])
    pipeline.run_once()
    with app_context(), tenant_session(tenant_a.id) as session:
        pause = session.get(NetworkPause, "sandbox")
        assert pause is not None and "slow down" in pause.reason
    # Another tenant's post on the same network waits too: the limit is on our application key.
    pipeline.schedule(tenant_b, owner_b, [other])
    assert pipeline.dispatch().claimed == 0
    assert network.posts() == []
