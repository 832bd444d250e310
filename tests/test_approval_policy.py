"""The approval policy page, sending a week's posts in one email, reminders, and the agency as approvers."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from saas.approvals import reminders
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, ApprovalPolicy, StepRule, Verdict
from tenants import tenant_session
from tenants.models import Role, TenantKind
from tests.factories import PASSWORD, add_member, app_context, make_tenant, make_user, make_workspace
from tests.test_review_links import REVIEWER, schedule, state_of, with_policy_and_channel, workspace_with_reviewer


def optional_workspace():
    tenant, owner, _reviewer, channel_id = workspace_with_reviewer(REVIEWER, ApprovalMode.OPTIONAL)
    return tenant, owner, channel_id


def test_policy_page_saves_steps_and_keeps_input_on_error(client):
    tenant, owner = make_workspace()
    reviewer = make_user(REVIEWER, name="Rosa")
    add_member(tenant, reviewer, Role.REVIEWER)
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/approvals/policy"

    refused = client.submit(page, {"mode": "required", "step1_name": "Client approval"}, page=page)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "Choose who approves at step “Client approval”" in html and 'value="Client approval"' in html

    saved = client.submit(
        page,
        {
            "mode": "required",
            "step1_name": "Agency review",
            "step1_roles": "editor",
            "step2_name": "Client approval",
            "step2_users": str(reviewer.id),
            "step2_rule": "all",
        },
        page=page,
    )
    assert saved.status_code == 302
    with app_context(), tenant_session(tenant.id) as session:
        policy = session.scalar(sa.select(ApprovalPolicy))
        assert policy.mode is ApprovalMode.REQUIRED
        assert [(s["name"], s["rule"], s["roles"], s["user_ids"]) for s in policy.steps] == [
            ("Agency review", "any", ["editor"], []),
            ("Client approval", "all", [], [reviewer.id]),
        ]
    stranger = make_user()
    response = client.submit(page, {"mode": "required", "step1_name": "X", "step1_users": str(stranger.id)}, page=page)
    assert response.status_code == 422  # only people of this workspace can be named


def test_week_of_posts_goes_for_approval_in_one_email(client, outbox):
    tenant, owner, channel_id = optional_workspace()
    ids = [schedule(tenant, owner, channel_id, f"Day {n} special", hours=24 * n + 2) for n in range(1, 4)]
    later = schedule(tenant, owner, channel_id, "Next month", hours=24 * 30)
    assert outbox.to(REVIEWER) == []  # optional: nothing is sent for approval on its own
    client.log_in(owner.email, PASSWORD)

    response = client.submit(f"/w/{tenant.slug}/approvals/submit-week", page=f"/w/{tenant.slug}/approvals")

    assert "Sent 3 posts for approval" in client.get(response.location).get_data(as_text=True)
    [mail] = outbox.to(REVIEWER)
    assert mail["Subject"].endswith("3 posts are waiting for your approval")
    assert all(f"Day {n} special" in mail.get_content() for n in range(1, 4))
    assert [state_of(tenant, i).value for i in [*ids, later]] == ["in_review"] * 3 + ["scheduled"]
    again = client.submit(f"/w/{tenant.slug}/approvals/submit-week", page=f"/w/{tenant.slug}/approvals")
    assert "No scheduled post of the next 7 days" in client.get(again.location).get_data(as_text=True)


def test_reminders_send_one_digest_a_day_and_warn_before_an_unapproved_post_is_due(outbox):
    tenant, owner, channel_id = optional_workspace()
    soon = schedule(tenant, owner, channel_id, "Soon", hours=3)
    schedule(tenant, owner, channel_id, "Later", hours=24 * 5)
    with app_context(), tenant_session(tenant.id) as session:
        approvals.submit_upcoming(session, owner.id, datetime.now(UTC))
        session.commit()
    before = len(outbox.to(REVIEWER))

    with app_context():
        reminders.send_reminders(datetime.now(UTC))
        reminders.send_reminders(datetime.now(UTC))  # again the same day: nothing new

    digests = outbox.to(REVIEWER)[before:]
    assert [m["Subject"] for m in digests] == ["2 posts waiting for your approval"]
    warnings = [m for m in outbox.to(owner.email) if "goes out soon" in m["Subject"]]
    assert len(warnings) == 1 and "“Soon”" in warnings[0].get_content()
    assert state_of(tenant, soon).value == "in_review"


def test_a_step_can_be_the_agencys_people(outbox):
    agency, agency_owner = make_workspace(name="Northwind Social", kind=TenantKind.AGENCY)
    client_owner = make_user()
    bluebell = make_tenant("Bluebell Bakery", kind=TenantKind.CLIENT, managed_by=agency, owner=client_owner)
    agency_step = approvals.Step("Agency review", StepRule.ANY, roles=("agency",))
    channel_id = with_policy_and_channel(bluebell, ApprovalMode.REQUIRED, agency_step, "acct-2")
    post_id = schedule(bluebell, client_owner, channel_id, "For the agency to check", hours=48)
    assert "waiting for your approval" in outbox.last_to(agency_owner.email)["Subject"]
    with app_context(), tenant_session(bluebell.id) as session:
        approvals.decide(session, post_id, user_id=agency_owner.id, verdict=Verdict.APPROVED, revision=1)
        session.commit()
    assert state_of(bluebell, post_id).value == "scheduled"
