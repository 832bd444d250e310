"""The emailed review link: works without login, on exactly its posts, until it expires or is revoked."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from publishers.base import Credentials, Profile
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, ReviewLink, StepRule
from saas.channels import service as channel_service
from saas.media import service as media_service
from saas.posts import service as post_service
from saas.posts.models import Post, PostState
from tenants import tenant_session
from tenants.models import Role, Tenant, User
from tests.factories import add_member, app_context, make_user, make_workspace

REVIEWER = "rosa@bluebell.example"


def with_policy_and_channel(tenant: Tenant, mode: ApprovalMode, step: approvals.Step, remote_id: str) -> int:
    """Give `tenant` an approval policy of one step and a sandbox channel; returns the channel id."""
    with app_context(), tenant_session(tenant.id) as session:
        approvals.set_policy(session, mode, [step])
        channel = channel_service.connect(
            session, "sandbox", Profile(remote_id, "bluebell", "Bluebell"), Credentials("token", None, None)
        )
        session.commit()
        return channel.id


def workspace_with_reviewer(
    reviewer_email: str | None = None, mode: ApprovalMode = ApprovalMode.REQUIRED
) -> tuple[Tenant, User, User, int]:
    tenant, owner = make_workspace()
    reviewer = make_user(reviewer_email)
    add_member(tenant, reviewer, Role.REVIEWER)
    step = approvals.Step("Client approval", StepRule.ANY, roles=(Role.REVIEWER,))
    return tenant, owner, reviewer, with_policy_and_channel(tenant, mode, step, "acct-1")


def schedule(tenant: Tenant, owner: User, channel_id: int, text: str, hours: float | None = None) -> int:
    """Schedule a post now, or `hours` from now."""
    local = None if hours is None else (datetime.now(UTC) + timedelta(hours=hours)).replace(tzinfo=None, microsecond=0)
    with app_context(), tenant_session(tenant.id) as session:
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text=text,
            channel_ids=[channel_id],
            schedule=post_service.Schedule(publish_now=local is None, local_time=local, timezone="UTC"),
        )
        session.commit()
        return post.id


def state_of(tenant: Tenant, post_id: int) -> PostState:
    with app_context(), tenant_session(tenant.id) as session:
        return session.get(Post, post_id).state


@pytest.fixture
def review(outbox):
    tenant, owner, reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    post_id = schedule(tenant, owner, channel_id, "Lemon tarts all week")
    other_id = schedule(tenant, owner, channel_id, "Secret other post")  # its own request, its own link
    link = outbox.link_in_last(REVIEWER)
    return tenant, owner, post_id, other_id, link


def first_link(outbox, address: str) -> str:
    import re

    body = outbox.to(address)[0].get_content()
    return re.search(r"http://localhost(/review/\S+)", body).group(1)


def test_link_shows_the_post_without_login_and_approves_it(client, outbox, review):
    tenant, owner, post_id, other_id, _ = review
    link = first_link(outbox, REVIEWER)
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Lemon tarts all week" in html and "@bluebell" in html
    assert "Secret other post" not in html

    response = client.submit(f"{link}/posts/{post_id}", {"action": "approve", "revision": "1", "comment": ""})

    assert response.status_code == 302
    assert state_of(tenant, post_id) is PostState.SCHEDULED
    assert "approval is recorded" in client.get(link).get_data(as_text=True)
    assert state_of(tenant, other_id) is PostState.IN_REVIEW


def test_request_changes_by_link_records_the_comment(client, outbox, review):
    tenant, owner, post_id, _, _ = review
    link = first_link(outbox, REVIEWER)
    refused = client.submit(f"{link}/posts/{post_id}", {"action": "request_changes", "revision": "1"})
    assert "Say what should change" in client.get(refused.location).get_data(as_text=True)
    assert state_of(tenant, post_id) is PostState.IN_REVIEW

    client.submit(f"{link}/posts/{post_id}", {"action": "request_changes", "revision": "1", "comment": "Add prices"})

    assert state_of(tenant, post_id) is PostState.CHANGES_REQUESTED
    assert "Add prices" in client.get(link).get_data(as_text=True)
    assert "Add prices" in outbox.last_to(owner.email).get_content()


def test_link_cannot_act_on_another_post_or_workspace(client, outbox, review):
    tenant, owner, post_id, other_id, _ = review
    link = first_link(outbox, REVIEWER)
    elsewhere, elsewhere_owner, _, channel_id = workspace_with_reviewer()
    foreign_id = schedule(elsewhere, elsewhere_owner, channel_id, "Another workspace's post")

    for target in (other_id, foreign_id, 999_999):
        response = client.submit(f"{link}/posts/{target}", {"action": "approve", "revision": "1"})
        assert response.status_code == 404
    assert state_of(tenant, other_id) is PostState.IN_REVIEW
    assert state_of(elsewhere, foreign_id) is PostState.IN_REVIEW


def test_tampered_token_is_refused(client, outbox, review):
    tenant, _, post_id, _, _ = review
    link = first_link(outbox, REVIEWER)
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert client.get(tampered).status_code == 404
    assert client.submit(f"{tampered}/posts/{post_id}", {"action": "approve", "revision": "1"}).status_code == 404
    assert state_of(tenant, post_id) is PostState.IN_REVIEW


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revoked_at": sa.func.now()}, "withdrawn"),
        ({"expires_at": sa.func.now() - timedelta(seconds=1)}, "expired"),
    ],
)
def test_revoked_or_expired_link_stops_working(client, outbox, review, change, message):
    tenant, _, post_id, _, _ = review
    link = first_link(outbox, REVIEWER)
    with app_context(), tenant_session(tenant.id) as session:
        session.execute(
            sa.update(ReviewLink).where(sa.literal(post_id) == sa.any_(ReviewLink.post_ids)).values(**change)
        )
        session.commit()

    page = client.get(link)
    assert page.status_code == 404 and message in page.get_data(as_text=True)
    assert client.submit(f"{link}/posts/{post_id}", {"action": "approve", "revision": "1"}).status_code == 404
    assert state_of(tenant, post_id) is PostState.IN_REVIEW


def test_link_expires_after_the_configured_days(app, review):
    tenant, _, post_id, _, _ = review
    with app_context(), tenant_session(tenant.id) as session:
        link = session.scalar(sa.select(ReviewLink).where(sa.literal(post_id) == sa.any_(ReviewLink.post_ids)))
        assert abs(link.expires_at - link.created_at - timedelta(days=14)) < timedelta(minutes=1)


def test_stale_revision_from_an_open_page_is_refused(client, outbox, review):
    tenant, owner, post_id, _, _ = review
    link = first_link(outbox, REVIEWER)
    response = client.submit(f"{link}/posts/{post_id}", {"action": "approve", "revision": "0"})
    assert "edited after you opened it" in client.get(response.location).get_data(as_text=True)
    assert state_of(tenant, post_id) is PostState.IN_REVIEW


def test_link_of_an_earlier_step_shows_no_decision_once_the_step_is_done(client, outbox):
    tenant, owner = make_workspace()
    first, second = make_user("first@bluebell.example"), make_user("second@bluebell.example")
    for person in (first, second):
        add_member(tenant, person, Role.REVIEWER)
    channel_id = with_policy_and_channel(
        tenant, ApprovalMode.REQUIRED, approvals.Step("Agency review", StepRule.ANY, user_ids=(first.id,)), "a-3"
    )
    with app_context(), tenant_session(tenant.id) as session:
        approvals.set_policy(
            session,
            ApprovalMode.REQUIRED,
            [
                approvals.Step("Agency review", StepRule.ANY, user_ids=(first.id,)),
                approvals.Step("Client approval", StepRule.ANY, user_ids=(second.id,)),
            ],
        )
        session.commit()
    post_id = schedule(tenant, owner, channel_id, "Two-step post")
    link = first_link(outbox, "first@bluebell.example")
    client.submit(f"{link}/posts/{post_id}", {"action": "approve", "revision": "1"})

    page = client.get(link).get_data(as_text=True)
    assert "Nothing for you to decide at this step" in page and 'value="approve"' not in page
    assert 'value="approve"' in client.get(first_link(outbox, "second@bluebell.example")).get_data(as_text=True)


def test_the_link_shows_each_channel_as_it_will_go_out(client, outbox):
    """The reviewer sees what would be sent: each channel's own text with its network's count, the image."""
    tenant, owner, _reviewer, channel_id = workspace_with_reviewer(REVIEWER)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "tan").save(buffer, "JPEG")
    with app_context(), tenant_session(tenant.id) as session:
        item = media_service.upload(
            session, filename="rye.jpg", data=buffer.getvalue(), alt="A rye loaf", uploaded_by=owner.id
        )
        post = post_service.schedule_post(
            session,
            author_id=owner.id,
            text="Base text",
            channel_ids=[channel_id],
            schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
            extras=post_service.Extras(overrides={channel_id: "Rye is back on Saturday"}, media_ids=(item.id,)),
        )
        session.commit()
    link = first_link(outbox, REVIEWER)

    html = client.get(link).get_data(as_text=True)

    assert '<blockquote class="preview-text">Rye is back on Saturday</blockquote>' in html
    assert '<blockquote class="preview-text">Base text' not in html
    assert "23 of 500 characters as Sandbox counts them" in html
    image = re.search(r'<img class="preview-media" src="http://localhost(/m/[^"]+)" alt="A rye loaf">', html)
    served = client.get(image.group(1))  # the reviewer has no login: the image is a signed address
    assert served.status_code == 200 and served.data == buffer.getvalue()
    assert f'id="post-{post.id}"' in html
