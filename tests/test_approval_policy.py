"""The approval policy page, sending a week's posts in one email, reminders, and the agency as approvers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from saas.approvals import reminders
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, ApprovalPolicy, ReviewLink, StepRule, Verdict
from saas.posts import service as post_service
from saas.posts.models import Post, PostState, PostTarget
from tenants import tenant_session
from tenants.models import Role, TenantKind, User
from tests.factories import PASSWORD, add_member, app_context, make_tenant, make_user, make_workspace
from tests.test_review_links import (
    REVIEWER,
    first_link,
    schedule,
    state_of,
    with_policy_and_channel,
    workspace_with_reviewer,
)


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


def draft(tenant, owner, channel_ids: list[int], text: str, hours: float | None) -> int:
    """Save a draft for `hours` from now (no time when None), as the composer's "Save draft" does."""
    local = None if hours is None else (datetime.now(UTC) + timedelta(hours=hours)).replace(tzinfo=None, microsecond=0)
    with app_context(), tenant_session(tenant.id) as session:
        post = post_service.save_draft(
            session,
            author_id=owner.id,
            text=text,
            channel_ids=channel_ids,
            schedule=post_service.Schedule(publish_now=False, local_time=local, timezone="Europe/Paris"),
        )
        session.commit()
        return post.id


def targets_of(tenant, post_id: int) -> list[tuple[int, datetime]]:
    with app_context(), tenant_session(tenant.id) as session:
        return [
            (t.channel_id, t.scheduled_at) for t in session.scalars(sa.select(PostTarget).filter_by(post_id=post_id))
        ]


def test_week_of_posts_goes_for_approval_in_one_email(client, outbox):
    tenant, owner, channel_id = optional_workspace()
    ids = [schedule(tenant, owner, channel_id, f"Day {n} special", hours=24 * n + 2) for n in range(1, 4)]
    later = schedule(tenant, owner, channel_id, "Next month", hours=24 * 30)
    assert outbox.to(REVIEWER) == []  # optional: nothing is sent for approval on its own
    client.log_in(owner.email, PASSWORD)
    assert "Submit these 3 for approval" in client.get(f"/w/{tenant.slug}/approvals").get_data(as_text=True)

    response = client.submit(f"/w/{tenant.slug}/approvals/submit-week", page=f"/w/{tenant.slug}/approvals")

    assert "Sent 3 posts for approval" in client.get(response.location).get_data(as_text=True)
    [mail] = outbox.to(REVIEWER)
    assert mail["Subject"].endswith("3 posts are waiting for your approval")
    assert all(f"Day {n} special" in mail.get_content() for n in range(1, 4))
    assert [state_of(tenant, i).value for i in [*ids, later]] == ["in_review"] * 3 + ["scheduled"]
    again = client.submit(f"/w/{tenant.slug}/approvals/submit-week", page=f"/w/{tenant.slug}/approvals")
    assert "Nothing of the next 7 days is waiting" in client.get(again.location).get_data(as_text=True)


def test_a_weeks_drafts_are_submitted_in_one_action_and_the_approved_revision_publishes(client, outbox):
    """Drafts wait without anyone being asked; one action schedules them as they stand and sends one email."""
    tenant, owner, _reviewer, channel_id = workspace_with_reviewer(REVIEWER, ApprovalMode.REQUIRED)
    monday = draft(tenant, owner, [channel_id], "Monday sourdough", hours=26)
    tuesday = draft(tenant, owner, [channel_id], "Tuesday croissants", hours=50)
    no_channel = draft(tenant, owner, [], "Which channel?", hours=30)
    next_month = draft(tenant, owner, [channel_id], "Christmas menu", hours=24 * 30)
    undated = draft(tenant, owner, [channel_id], "Some day", hours=None)
    assert outbox.to(REVIEWER) == []  # saving drafts asks nobody
    client.log_in(owner.email, PASSWORD)
    queue = client.get(f"/w/{tenant.slug}/approvals").get_data(as_text=True)
    assert "Monday sourdough" in queue and "Which channel?" in queue and "Christmas menu" not in queue

    response = client.submit(f"/w/{tenant.slug}/approvals/submit-week", page=f"/w/{tenant.slug}/approvals")

    page = client.get(response.location).get_data(as_text=True)
    assert "Sent 2 posts for approval in one email" in page
    assert "Not sent: the draft “Which channel?” — Choose at least one channel." in page
    [mail] = outbox.to(REVIEWER)
    assert "Monday sourdough" in mail.get_content() and "Tuesday croissants" in mail.get_content()
    states = [state_of(tenant, i).value for i in (monday, tuesday, no_channel, next_month, undated)]
    assert states == ["in_review", "in_review", "draft", "draft", "draft"]
    [(target_channel, when)] = targets_of(tenant, monday)
    assert target_channel == channel_id and when > datetime.now(UTC) + timedelta(hours=24)  # 26 h ahead in Paris
    assert targets_of(tenant, no_channel) == []

    # The reviewer approves from the link: the post is scheduled on the revision that was approved.
    link = first_link(outbox, REVIEWER)
    with app_context(), tenant_session(tenant.id) as session:
        revision = session.get(Post, monday).revision
    client.submit(f"{link}/posts/{monday}", {"action": "approve", "revision": str(revision), "comment": ""})
    assert state_of(tenant, monday) is PostState.SCHEDULED
    with app_context(), tenant_session(tenant.id) as session:
        assert (monday, revision) in approvals.approved_revisions(session, [monday])


def test_one_draft_is_submitted_from_its_page_or_told_what_it_lacks(client, outbox):
    tenant, owner, channel_id = optional_workspace()
    ready = draft(tenant, owner, [channel_id], "Ready to go", hours=48)
    undated = draft(tenant, owner, [channel_id], "No time yet", hours=None)
    client.log_in(owner.email, PASSWORD)
    assert "Submit for approval" in client.get(f"/w/{tenant.slug}/posts/{ready}").get_data(as_text=True)

    refused = client.submit(
        f"/w/{tenant.slug}/approvals/posts/{undated}/submit", page=f"/w/{tenant.slug}/posts/{undated}"
    )
    assert "cannot be sent for approval yet: Choose a date and time for this draft." in client.get(
        refused.location
    ).get_data(as_text=True)
    assert state_of(tenant, undated) is PostState.DRAFT and outbox.to(REVIEWER) == []

    sent = client.submit(f"/w/{tenant.slug}/approvals/posts/{ready}/submit", page=f"/w/{tenant.slug}/posts/{ready}")
    assert "Sent for approval" in client.get(sent.location).get_data(as_text=True)
    assert state_of(tenant, ready) is PostState.IN_REVIEW and len(outbox.to(REVIEWER)) == 1


def test_reminders_send_one_digest_a_day_and_warn_before_an_unapproved_post_is_due(client, outbox):
    tenant, owner, channel_id = optional_workspace()
    soon = schedule(tenant, owner, channel_id, "Soon", hours=3)
    schedule(tenant, owner, channel_id, "Later", hours=24 * 5)
    with app_context(), tenant_session(tenant.id) as session:
        post_service.submit_week(session, owner.id)
        session.commit()
    before = len(outbox.to(REVIEWER))

    with app_context():
        reminders.send_reminders(datetime.now(UTC))
        reminders.send_reminders(datetime.now(UTC))  # again the same day: nothing new

    digests = outbox.to(REVIEWER)[before:]
    assert [m["Subject"] for m in digests] == ["2 posts waiting for your approval"]
    # The digest opens both posts without a login, through a review link of its own (one, not one per run).
    body = digests[0].get_content()
    assert "Soon" in body and "Later" in body and "UTC" in body  # every time with its zone
    link = re.search(r"http://localhost(/review/\S+)", body).group(1)
    page = client.get(link).get_data(as_text=True)
    assert "Soon" in page and "Later" in page
    with app_context(), tenant_session(tenant.id) as session:
        assert session.scalar(sa.select(sa.func.count(ReviewLink.id))) == 2  # the submission's and the digest's
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


def test_a_reviewer_named_by_email_approves_from_the_link_without_an_account(client, make_client, outbox):
    tenant, owner = make_workspace(name="Bluebell Bakery")
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/approvals/policy"
    for bad, message in (
        ({"name": "Rosa", "email": ""}, "Enter your email address."),
        ({"name": "Rosa", "email": "not-an-address"}, "like name@example.com"),
        ({"name": "Rosa", "email": "r" * 250 + "@x.example"}, "Use at most 254 characters."),
        ({"name": "", "email": "rosa@bluebell.example"}, "Enter the reviewer&#39;s name."),
    ):
        refused = client.submit(f"/w/{tenant.slug}/approvals/reviewers", bad, page=page)
        assert refused.status_code == 422 and message in refused.get_data(as_text=True), bad

    added = client.submit(
        f"/w/{tenant.slug}/approvals/reviewers", {"name": "Rosa", "email": " Rosa@Bluebell.example "}, page=page
    )

    assert "Added Rosa (rosa@bluebell.example) as a reviewer" in client.get(added.location).get_data(as_text=True)
    assert "no account or password is needed" in outbox.last_to(REVIEWER).get_content().lower()
    again = client.submit(f"/w/{tenant.slug}/approvals/reviewers", {"name": "Rosa", "email": REVIEWER}, page=page)
    assert again.status_code == 422 and "already a member" in again.get_data(as_text=True)
    with app_context(), tenant_session(tenant.id) as session:
        rosa = session.scalar(sa.select(User).where(User.email == REVIEWER))
        assert [m.role for m in rosa.memberships] == [Role.REVIEWER]
        approvals.set_policy(
            session, ApprovalMode.REQUIRED, [approvals.Step("Client", StepRule.ANY, user_ids=(rosa.id,))]
        )
        session.commit()
    # No password opens the account (not even an empty one); the emailed link does.
    visitor = make_client()
    for password in ("", "!none", PASSWORD):
        refused = visitor.submit("/login", {"email": REVIEWER, "password": password})
        assert refused.status_code != 302
    channel_id = with_policy_and_channel(
        tenant, ApprovalMode.REQUIRED, approvals.Step("Client", StepRule.ANY, user_ids=(rosa.id,)), "acct-9"
    )
    post_id = schedule(tenant, owner, channel_id, "Cinnamon buns", hours=30)
    assert outbox.last_to(REVIEWER)["Subject"] == "Bluebell Bakery: a post is waiting for your approval"
    link = re.search(r"http://localhost(/review/\S+)", outbox.last_to(REVIEWER).get_content()).group(1)
    visitor.submit(f"{link}/posts/{post_id}", {"action": "approve", "revision": "1", "comment": ""})
    assert state_of(tenant, post_id) is PostState.SCHEDULED
