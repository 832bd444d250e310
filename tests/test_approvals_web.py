"""Approvals in the workspace: decide from the post page and the queue, comments, revoking a review link."""

from __future__ import annotations

import sqlalchemy as sa

from saas.approvals.models import ReviewLink
from saas.posts.models import Post, PostState
from tenants import tenant_session
from tenants.models import Role
from tests.factories import PASSWORD, add_member, app_context, make_user
from tests.test_review_links import REVIEWER, first_link, schedule, state_of, workspace_with_reviewer


def test_reviewer_approves_from_the_post_page(client, outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    post_id = schedule(tenant, owner, channel_id, "Scones on Sunday")
    client.log_in(REVIEWER, PASSWORD)
    page = client.get(f"/w/{tenant.slug}/posts/{post_id}").get_data(as_text=True)
    assert "In review, step 1 of 1" in page and "Approve" in page

    client.submit(
        f"/w/{tenant.slug}/approvals/posts/{post_id}/approve",
        {"revision": "1"},
        page=f"/w/{tenant.slug}/posts/{post_id}",
    )

    assert state_of(tenant, post_id) is PostState.SCHEDULED
    page = client.get(f"/w/{tenant.slug}/posts/{post_id}").get_data(as_text=True)
    assert "approved revision 1" in page


def test_queue_approves_several_posts_at_once(client, outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    ids = [schedule(tenant, owner, channel_id, f"Bulk {n}") for n in range(3)]
    client.log_in(REVIEWER, PASSWORD)
    queue = client.get(f"/w/{tenant.slug}/approvals").get_data(as_text=True)
    assert all(f"Bulk {n}" in queue for n in range(3))

    response = client.submit(
        f"/w/{tenant.slug}/approvals/bulk",
        {"action": "approve", "post_id": [str(i) for i in ids[:2]], **{f"revision-{i}": "1" for i in ids}},
        page=f"/w/{tenant.slug}/approvals",
    )

    assert "Approved: 2 posts" in client.get(response.location).get_data(as_text=True)
    assert [state_of(tenant, i) for i in ids] == [PostState.SCHEDULED, PostState.SCHEDULED, PostState.IN_REVIEW]


def test_empty_queue_says_so(client):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    client.log_in(REVIEWER, PASSWORD)
    assert "Nothing is waiting for your approval." in client.get(f"/w/{tenant.slug}/approvals").get_data(as_text=True)


def test_internal_comments_stay_with_the_team_and_mentions_notify(client, make_client, outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    editor = make_user("eddie@northwind.example")
    add_member(tenant, editor, Role.EDITOR)
    post_id = schedule(tenant, owner, channel_id, "Muffins")
    client.log_in(owner.email, PASSWORD)
    page = f"/w/{tenant.slug}/posts/{post_id}"
    client.submit(f"/w/{tenant.slug}/approvals/posts/{post_id}/comments", {"body": "Shared note"}, page=page)
    client.submit(
        f"/w/{tenant.slug}/approvals/posts/{post_id}/comments",
        {"body": "@eddie check the price first", "internal": "y"},
        page=page,
    )
    assert "@eddie check the price first" in outbox.last_to("eddie@northwind.example").get_content()

    as_reviewer = make_client()
    as_reviewer.log_in(REVIEWER, PASSWORD)
    seen = as_reviewer.get(page).get_data(as_text=True)
    assert "Shared note" in seen and "check the price" not in seen
    link_page = as_reviewer.get(first_link(outbox, REVIEWER)).get_data(as_text=True)
    assert "Shared note" in link_page and "check the price" not in link_page


def test_revoking_a_review_link_from_the_post_page(client, outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    post_id = schedule(tenant, owner, channel_id, "Revocable")
    link = first_link(outbox, REVIEWER)
    client.log_in(owner.email, PASSWORD)
    with app_context(), tenant_session(tenant.id) as session:
        link_id = session.scalar(sa.select(ReviewLink.id))
    client.submit(f"/w/{tenant.slug}/approvals/links/{link_id}/revoke", page=f"/w/{tenant.slug}/posts/{post_id}")
    assert client.get(link).status_code == 404
    with app_context(), tenant_session(tenant.id) as session:
        assert session.get(Post, post_id).state is PostState.IN_REVIEW


def test_queue_sends_several_back_with_one_comment_and_refuses_without_one(client, outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    ids = [schedule(tenant, owner, channel_id, f"Batch {n}") for n in range(2)]
    client.log_in(REVIEWER, PASSWORD)
    queue = f"/w/{tenant.slug}/approvals"
    form = {"action": "request-changes", "post_id": [str(i) for i in ids], **{f"revision-{i}": "1" for i in ids}}

    refused = client.submit(f"{queue}/bulk", form, page=queue)
    assert "Say what should change" in client.get(refused.location).get_data(as_text=True)
    assert [state_of(tenant, i) for i in ids] == [PostState.IN_REVIEW] * 2

    done = client.submit(f"{queue}/bulk", form | {"comment": "Use the spring photos"}, page=queue)
    assert "Sent back: 2 posts" in client.get(done.location).get_data(as_text=True)
    assert [state_of(tenant, i) for i in ids] == [PostState.CHANGES_REQUESTED] * 2
