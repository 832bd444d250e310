"""Approvals through the real dispatcher: an unapproved post never goes out; an approval is of one revision."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, RequestStatus, StepRule, Verdict
from saas.posts import service as post_service
from saas.posts.models import Post, PostState, PostTarget, TargetState
from tenants import tenant_session
from tenants.models import Role, Tenant, User
from tests.factories import add_member, app_context, make_user, make_workspace


def require_approval(tenant: Tenant, *steps: approvals.Step) -> None:
    with app_context(), tenant_session(tenant.id) as session:
        approvals.set_policy(session, ApprovalMode.REQUIRED, steps)
        session.commit()


def decide(tenant: Tenant, post_id: int, user: User, verdict: Verdict = Verdict.APPROVED, **kwargs) -> None:
    with app_context(), tenant_session(tenant.id) as session:
        revision = kwargs.pop("revision", None) or session.get(Post, post_id).revision
        approvals.decide(session, post_id, user_id=user.id, verdict=verdict, revision=revision, **kwargs)
        session.commit()


def post_state(tenant: Tenant, post_id: int) -> tuple[PostState, int]:
    with app_context(), tenant_session(tenant.id) as session:
        post = session.get(Post, post_id)
        return post.state, post.revision


def edit(tenant: Tenant, author: User, post_id: int, channel_ids: list[int], text: str) -> None:
    with app_context(), tenant_session(tenant.id) as session:
        post_service.schedule_post(
            session,
            author_id=author.id,
            text=text,
            channel_ids=channel_ids,
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
            post_id=post_id,
        )
        session.commit()


def release_now(pipeline, tenant: Tenant, post_id: int) -> None:
    """What the agency does after an approval came too late: reschedule the blocked target to now."""
    [target] = pipeline.targets(tenant, post_id)
    with app_context(), tenant_session(tenant.id) as session:
        post_service.reschedule(session, post_id, target.id, post_service.utcnow())
        session.commit()


@pytest.fixture
def reviewed(pipeline):
    """A workspace that requires one reviewer's approval, with a channel on the sandbox network."""
    tenant, owner = make_workspace()
    reviewer = make_user("rosa@bluebell.example", name="Rosa Reviewer")
    add_member(tenant, reviewer, Role.REVIEWER)
    require_approval(tenant, approvals.Step("Client approval", StepRule.ANY, roles=(Role.REVIEWER,)))
    channel = pipeline.connect(tenant, "bluebell")
    return tenant, owner, reviewer, channel


def test_unapproved_post_never_publishes_even_when_due(pipeline, network, reviewed, outbox):
    tenant, owner, reviewer, channel = reviewed
    post_id = pipeline.schedule(tenant, owner, [channel], "Sourdough Saturday")
    assert post_state(tenant, post_id) == (PostState.IN_REVIEW, 1)
    assert "waiting for your approval" in outbox.last_to("rosa@bluebell.example")["Subject"]

    report = pipeline.run_once()
    pipeline.run_once()  # and again: a blocked target stays blocked

    assert report.claimed == 1 and report.blocked == 1
    assert network.posts() == []
    [target] = pipeline.targets(tenant)
    assert target.state is TargetState.BLOCKED
    assert target.blocked_reason == "approval"
    assert target.last_error.startswith("Approval missing")
    assert target.attempts == []
    told = outbox.last_to(owner.email)
    assert told["Subject"] == "A post was not published: approval missing"
    assert "Approval missing" in told.get_content()


def test_approved_post_publishes(pipeline, network, reviewed):
    tenant, owner, reviewer, channel = reviewed
    post_id = pipeline.schedule(tenant, owner, [channel], "Rye is back", in_seconds=3600)
    decide(tenant, post_id, reviewer)
    assert post_state(tenant, post_id) == (PostState.SCHEDULED, 1)
    pipeline.make_due_now(tenant)
    pipeline.run_once()
    assert [p.text for p in network.posts("bluebell")] == ["Rye is back"]
    assert post_state(tenant, post_id)[0] is PostState.PUBLISHED


def test_edit_after_approval_needs_new_approval(pipeline, network, reviewed):
    tenant, owner, reviewer, channel = reviewed
    post_id = pipeline.schedule(tenant, owner, [channel], "Cinnamon buns at 8", in_seconds=3600)
    decide(tenant, post_id, reviewer)

    edit(tenant, owner, post_id, [channel.id], "Cinnamon buns at 9")

    assert post_state(tenant, post_id) == (PostState.IN_REVIEW, 2)
    # An approval of what the reviewer saw before the edit cannot be given any more.
    with pytest.raises(approvals.ApprovalError, match="edited after you opened it"):
        decide(tenant, post_id, reviewer, revision=1)
    assert pipeline.run_once().blocked == 1  # the edit made it due now: held back, not published
    assert network.posts() == []

    decide(tenant, post_id, reviewer)
    release_now(pipeline, tenant, post_id)
    pipeline.run_once()

    assert [p.text for p in network.posts("bluebell")] == ["Cinnamon buns at 9"]
    with app_context(), tenant_session(tenant.id) as session:
        history = approvals.history(session, post_id)
        assert [(r.revision, r.status) for r in history] == [
            (2, RequestStatus.APPROVED),
            (1, RequestStatus.SUPERSEDED),
        ]
        assert [(d.reviewer_name, d.revision) for r in history for d in r.decisions] == [
            ("Rosa Reviewer", 2),
            ("Rosa Reviewer", 1),
        ]


def test_two_steps_with_all_on_step_two_need_every_named_approver(pipeline, network, outbox):
    tenant, owner = make_workspace()
    staff = make_user("sam@northwind.example", name="Sam Staff")
    add_member(tenant, staff, Role.EDITOR)
    ann, ben = make_user("ann@bluebell.example"), make_user("ben@bluebell.example")
    for person in (ann, ben):
        add_member(tenant, person, Role.REVIEWER)
    require_approval(
        tenant,
        approvals.Step("Agency review", StepRule.ANY, user_ids=(staff.id,)),
        approvals.Step("Client approval", StepRule.ALL, user_ids=(ann.id, ben.id)),
    )
    channel = pipeline.connect(tenant, "twostep")
    post_id = pipeline.schedule(tenant, owner, [channel], "Two steps", in_seconds=3600)
    assert outbox.to("ann@bluebell.example") == []  # step 2 is not asked before step 1 is done

    with pytest.raises(approvals.ApprovalError, match="not an approver"):
        decide(tenant, post_id, ann)
    decide(tenant, post_id, staff)
    assert len(outbox.to("ann@bluebell.example")) == 1 and len(outbox.to("ben@bluebell.example")) == 1
    decide(tenant, post_id, ann)
    assert post_state(tenant, post_id)[0] is PostState.IN_REVIEW
    with pytest.raises(approvals.ApprovalError, match="already approved"):
        decide(tenant, post_id, ann)
    pipeline.make_due_now(tenant)
    assert pipeline.run_once().blocked == 1  # one of two is not enough
    assert network.posts() == []

    decide(tenant, post_id, ben)
    assert post_state(tenant, post_id)[0] is PostState.SCHEDULED
    release_now(pipeline, tenant, post_id)
    pipeline.run_once()
    assert [p.text for p in network.posts("twostep")] == ["Two steps"]


def test_request_changes_needs_a_comment_and_tells_the_author(pipeline, reviewed, outbox):
    tenant, owner, reviewer, channel = reviewed
    post_id = pipeline.schedule(tenant, owner, [channel], "Gluten free?", in_seconds=3600)
    with pytest.raises(approvals.ApprovalError, match="Say what should change"):
        decide(tenant, post_id, reviewer, Verdict.CHANGES_REQUESTED, comment="  ")
    assert post_state(tenant, post_id)[0] is PostState.IN_REVIEW

    decide(tenant, post_id, reviewer, Verdict.CHANGES_REQUESTED, comment="Say 'wheat free' instead.")

    assert post_state(tenant, post_id)[0] is PostState.CHANGES_REQUESTED
    told = outbox.last_to(owner.email)
    assert "asked for changes" in told["Subject"]
    assert "Say 'wheat free' instead." in told.get_content()
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(PostTarget.state)) is TargetState.SCHEDULED


def test_missing_approval_tells_the_client_and_the_agency_once_per_post(pipeline, network, outbox):
    from tenants.models import TenantKind
    from tests.factories import make_tenant

    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    client_owner = make_user()
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=client_owner)
    add_member(bluebell, make_user(), Role.REVIEWER)
    require_approval(bluebell, approvals.Step("Client approval", StepRule.ANY, roles=(Role.REVIEWER,)))
    channels = [pipeline.connect(bluebell, "bluebell"), pipeline.connect(bluebell, "bluebell2")]
    pipeline.schedule(bluebell, agency_owner, channels, "Late approval")

    assert pipeline.run_once().blocked == 2

    assert network.posts() == []
    for person in (client_owner, agency_owner):
        told = [m for m in outbox.to(person.email) if "approval missing" in m["Subject"]]
        assert len(told) == 1, person.email
