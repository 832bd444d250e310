"""The subscription's life as publishing sees it: trial, past due with grace, blocked, paid again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from billing.models import SubscriptionStatus
from saas import db
from saas.posts.models import PostTarget, TargetState
from tests.billing.conftest import subscribe, subscription_row
from tests.factories import PASSWORD, app_context, make_workspace


def _target(post_id: int) -> PostTarget:
    with app_context(), db.new_session(info={"system": True}) as session:
        return session.scalars(sa.select(PostTarget).where(PostTarget.post_id == post_id)).one()


def _texts(network) -> list[str]:
    return sorted(p.text for p in network.posts())


def test_trial_end_past_due_grace_blocked_then_paid_resumes_without_a_burst(
    app, client, stripe, pipeline, network, outbox, monkeypatch
):
    monkeypatch.setitem(app.config, "BILLING_TRIAL_CARRIES_OVER", True)  # Pro starts with the trial's days left
    tenant, owner = make_workspace()
    client.log_in(owner.email, PASSWORD)
    sub_id = subscribe(client, stripe, tenant)
    assert subscription_row(tenant.id).status is SubscriptionStatus.TRIALING
    channel = pipeline.connect(tenant, "bakery")

    # Trialing publishes.
    pipeline.schedule(tenant, owner, [channel], "During the trial")
    pipeline.run_once()
    assert _texts(network) == ["During the trial"]

    # The trial ends and the card is declined: past due, still publishing during the grace period.
    customer = subscription_row(tenant.id).stripe_customer_id
    stripe.decline_cards(customer)
    stripe.renew(sub_id)
    stripe.wait_delivered()
    row = subscription_row(tenant.id)
    assert row.status is SubscriptionStatus.PAST_DUE
    grace_end = row.past_due_since + app.config["BILLING_GRACE_PERIOD"]
    assert "Publishing continues until" in outbox.last_to(owner.email).get_content()
    page = client.get(f"/w/{tenant.slug}/calendar").get_data(as_text=True)
    assert "A payment failed." in page and "Update the payment method" in page

    pipeline.schedule(tenant, owner, [channel], "In the grace period")
    held = pipeline.schedule(tenant, owner, [channel], "Due once the grace period is over", in_seconds=3600)
    later = pipeline.schedule(tenant, owner, [channel], "Due tomorrow", in_seconds=86400)
    pipeline.run_once()
    assert "In the grace period" in _texts(network)

    # The grace period runs out (configured shorter here instead of waiting a week): due posts are held.
    monkeypatch.setitem(app.config, "BILLING_GRACE_PERIOD", timedelta(0))
    assert grace_end > datetime.now(UTC)
    with app_context(), db.new_session(info={"system": True}) as session:  # one more post falls due now
        session.execute(
            sa.update(PostTarget)
            .where(PostTarget.post_id == held)
            .values(scheduled_at=sa.func.now(), due_at=sa.func.now())
        )
        session.commit()
    pipeline.run_once()
    blocked = _target(held)
    assert blocked.state is TargetState.BLOCKED and blocked.blocked_reason == "billing"
    assert "paused for billing" in blocked.last_error
    assert "Due once the grace period is over" not in _texts(network)
    paused_mail = outbox.last_to(owner.email)
    assert paused_mail["Subject"] == "Publishing is paused for billing"

    # Scheduling more is refused while publishing is paused, with the reason.
    response = client.submit(
        f"/w/{tenant.slug}/posts/new", {"text": "More", "channels": str(channel.id), "publish_now": "y"},
        page=f"/w/{tenant.slug}/posts/new",
    )  # fmt: skip
    assert response.status_code == 422
    assert "paused for billing" in response.get_data(as_text=True)

    # The customer fixes the card; Stripe retries and the subscription is active again.
    stripe.pay_open_invoices(customer)
    stripe.wait_delivered()
    assert subscription_row(tenant.id).status is SubscriptionStatus.ACTIVE
    assert outbox.last_to(owner.email)["Subject"] == "Payment received: publishing is back on"

    # No burst: the post that fell due while held stays held, offered for rescheduling; new posts go out.
    pipeline.schedule(tenant, owner, [channel], "After paying")
    pipeline.run_once()
    assert _texts(network) == sorted(["During the trial", "In the grace period", "After paying"])
    still_held = _target(held)
    assert still_held.state is TargetState.BLOCKED
    assert "reschedule it" in still_held.last_error
    assert _target(later).state is TargetState.SCHEDULED  # its time has not come: untouched throughout
    detail = client.get(f"/w/{tenant.slug}/posts/{held}").get_data(as_text=True)
    assert "Reschedule" in detail

    # A person reschedules it: it goes out at the new time, once.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    response = client.submit(
        f"/w/{tenant.slug}/posts/{held}/targets/{still_held.id}/reschedule",
        {"date": tomorrow.strftime("%Y-%m-%d"), "time": tomorrow.strftime("%H:%M")},
        page=f"/w/{tenant.slug}/posts/{held}",
    )
    assert response.status_code == 302
    rescheduled = _target(held)
    assert rescheduled.state is TargetState.SCHEDULED and rescheduled.blocked_reason is None
    assert rescheduled.due_at > datetime.now(UTC) + timedelta(hours=23)


def test_lapsed_statuses_block_and_keep_the_posts(client, stripe, pipeline, network):
    for status in ("unpaid", "canceled", "incomplete_expired"):
        tenant, owner = make_workspace()
        client.log_in(owner.email, PASSWORD)
        sub_id = subscribe(client, stripe, tenant)
        channel = pipeline.connect(tenant, f"lapsed{status.replace('_', '')}")
        post_id = pipeline.schedule(tenant, owner, [channel], f"Not while {status}", in_seconds=3600)
        stripe.set_status(sub_id, status)
        stripe.wait_delivered()
        with app_context(), db.new_session(info={"system": True}) as session:
            session.execute(sa.update(PostTarget).where(PostTarget.post_id == post_id).values(due_at=sa.func.now()))
            session.commit()
        pipeline.run_once()
        target = _target(post_id)
        assert (target.state, target.blocked_reason) == (TargetState.BLOCKED, "billing"), status
        assert f"Not while {status}" not in _texts(network)


def test_free_trial_ends_without_a_plan_and_blocks(app, client, stripe, pipeline, network, monkeypatch):
    tenant, owner = make_workspace()
    channel = pipeline.connect(tenant, "trialonly")
    post_id = pipeline.schedule(tenant, owner, [channel], "After the trial", in_seconds=3600)
    monkeypatch.setitem(app.config, "BILLING_TRIAL_DAYS", 0)  # the 14 days are over
    with app_context(), db.new_session(info={"system": True}) as session:
        session.execute(sa.update(PostTarget).where(PostTarget.post_id == post_id).values(due_at=sa.func.now()))
        session.commit()
    pipeline.run_once()
    target = _target(post_id)
    assert target.state is TargetState.BLOCKED
    assert "free trial ended" in target.last_error
    client.log_in(owner.email, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/billing").get_data(as_text=True)
    assert "Trial ended" in page and "Choose Pro" in page
