"""Submit posts for approval, decide on them step by step, and restart the steps when a post changes.

An approval belongs to one revision of a post: `saas.posts.service` bumps `Post.revision` on every edit
of text, media, channels or time and calls `restart`, which supersedes what was approved before. The
dispatcher asks `approved_revisions` (through `saas.publishing.policy`) whether a post may go out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from saas import mail
from saas.approvals.models import (
    ApprovalDecision,
    ApprovalMode,
    ApprovalPolicy,
    ApprovalRequest,
    PostComment,
    RequestStatus,
    ReviewLink,
    StepRule,
    Verdict,
)
from saas.notifications.service import notify
from saas.posts.models import Post, PostState
from saas.webhooks import events as webhook_events
from tenants import agency, tokens
from tenants.models import Membership, Role, Tenant, TenantKind, User
from tenants.scoping import bound_tenant_id

OPEN = (RequestStatus.PENDING, RequestStatus.CHANGES_REQUESTED)


class ApprovalError(ValueError):
    """The decision or submission cannot be made; the message says why, for the user."""


@dataclass(frozen=True)
class Step:
    name: str
    rule: StepRule
    roles: tuple[str, ...] = ()  # Role values, or AGENCY_STAFF
    user_ids: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule.value, "roles": [str(r) for r in self.roles],
                "user_ids": list(self.user_ids)}  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- policy ------------------------------------------------------------------------------------------------


def policy_of(session: so.Session) -> ApprovalPolicy | None:
    return session.scalar(sa.select(ApprovalPolicy))


def mode_of(session: so.Session) -> ApprovalMode:
    policy = policy_of(session)
    return policy.mode if policy else ApprovalMode.NONE


def set_policy(session: so.Session, mode: ApprovalMode, steps: Sequence[Step]) -> ApprovalPolicy:
    """Save the workspace's policy. A mode other than none needs at least one step, each with approvers."""
    if mode is not ApprovalMode.NONE and not steps:
        raise ApprovalError("Add at least one approval step, or choose “No approval”.")
    for step in steps:
        if not step.name.strip():
            raise ApprovalError("Give every step a name, such as “Client approval”.")
        if not step.roles and not step.user_ids:
            raise ApprovalError(f"Choose who approves at step “{step.name}”: a role or named people.")
    policy = policy_of(session) or ApprovalPolicy()
    policy.mode = mode
    policy.steps = [s.as_json() for s in steps]
    session.add(policy)
    session.flush()
    return policy


# A step "role" that is not a workspace role: the managing agency's people who work in this client.
AGENCY_STAFF = "agency"


def approvers(session: so.Session, step: dict[str, Any]) -> set[int]:
    """User ids who may decide at `step`: members holding one of its roles, the named people, and with
    the "agency" role the managing agency's owners, admins and the staff assigned to this client."""
    ids = set(step.get("user_ids") or [])
    roles = [r for r in step.get("roles") or [] if r != AGENCY_STAFF]
    if roles:
        ids |= set(session.scalars(sa.select(Membership.user_id).where(Membership.role.in_(roles))))
    if AGENCY_STAFF in (step.get("roles") or []):
        tenant_id = bound_tenant_id(session)
        assert tenant_id is not None
        ids |= set(agency.staff_for_client(tenant_id))
    return ids


# --- requests -----------------------------------------------------------------------------------------------


def open_request(session: so.Session, post_id: int) -> ApprovalRequest | None:
    return session.scalar(
        sa.select(ApprovalRequest).where(ApprovalRequest.post_id == post_id, ApprovalRequest.status.in_(OPEN))
    )


def history(session: so.Session, post_id: int) -> list[ApprovalRequest]:
    """Every request of the post, newest first, with its decisions: who approved which revision."""
    return list(
        session.scalars(
            sa.select(ApprovalRequest)
            .where(ApprovalRequest.post_id == post_id)
            .options(so.selectinload(ApprovalRequest.decisions))
            .order_by(ApprovalRequest.id.desc())
        )
    )


def latest_request(session: so.Session, post_id: int) -> ApprovalRequest | None:
    return session.scalar(
        sa.select(ApprovalRequest).where(ApprovalRequest.post_id == post_id).order_by(ApprovalRequest.id.desc())
    )


def submit(session: so.Session, post_ids: Sequence[int], submitted_by_id: int | None) -> list[ApprovalRequest]:
    """Start the policy's steps for the current revision of each post; one email per approver for all of them."""
    posts = list(session.scalars(sa.select(Post).where(Post.id.in_(post_ids)).with_for_update()))
    if len(posts) != len(set(post_ids)):
        raise LookupError(post_ids)
    policy = policy_of(session)
    if policy is None or policy.mode is ApprovalMode.NONE or not policy.steps:
        raise ApprovalError("This workspace has no approval steps. Set them up under Approvals first.")
    requests = []
    for post in posts:
        if post.state is PostState.DRAFT:  # an approved draft would need approving again once scheduled
            raise ApprovalError(
                "A draft is scheduled before it is sent for approval (posts.service.submit_for_approval)."
            )
        if post.state not in (
            PostState.SCHEDULED,
            PostState.CHANGES_REQUESTED,
            PostState.IN_REVIEW,
            PostState.APPROVED,
        ):
            raise ApprovalError("Only a post that has not gone out yet can be sent for approval.")
        supersede(session, post.id)
        request = ApprovalRequest(
            post_id=post.id, revision=post.revision, steps=list(policy.steps), submitted_by_id=submitted_by_id
        )
        session.add(request)
        post.state = PostState.IN_REVIEW
        requests.append(request)
    session.flush()
    for request in requests:
        webhook_events.approval(session, "approval.requested", request)
    _ask_step(session, requests, submitted_by_id)
    return requests


def unsubmitted_between(session: so.Session, start: datetime, end: datetime) -> list[int]:
    """Drafts and scheduled posts planned for [start, end] whose current revision is not in review or approved."""
    in_process = sa.select(ApprovalRequest.post_id).where(
        ApprovalRequest.status.in_([*OPEN, RequestStatus.APPROVED]), ApprovalRequest.revision == Post.revision
    )
    return list(
        session.scalars(
            sa.select(Post.id)
            .where(
                Post.state.in_([PostState.DRAFT, PostState.SCHEDULED]),
                Post.scheduled_at.between(start, end),
                Post.id.not_in(in_process.scalar_subquery()),
            )
            .order_by(Post.scheduled_at, Post.id)
        )
    )


def supersede(session: so.Session, post_id: int) -> None:
    """What was approved or under way for earlier revisions no longer counts."""
    session.execute(
        sa.update(ApprovalRequest)
        .where(
            ApprovalRequest.post_id == post_id,
            ApprovalRequest.status.in_([*OPEN, RequestStatus.APPROVED]),
        )
        .values(status=RequestStatus.SUPERSEDED)
    )


def restart(session: so.Session, post: Post, actor_id: int | None, *, new: bool = False) -> None:
    """The post has a new revision: what was approved no longer counts, and the steps start again.

    In a workspace that requires approval every new revision is submitted at once; with optional approval
    only a post that was already in the process is. A `new` post has no request to look for.
    """
    previous = None if new else latest_request(session, post.id)
    mode = mode_of(session)
    if previous is not None and previous.revision == post.revision:
        return  # this revision is already in the process
    if post.state is PostState.DRAFT:
        supersede(session, post.id)  # a draft is sent for approval by a person, when it is ready
    elif mode is ApprovalMode.REQUIRED or (mode is ApprovalMode.OPTIONAL and previous is not None):
        submit(session, [post.id], actor_id)
    elif previous is not None:
        supersede(session, post.id)


def decide(
    session: so.Session,
    post_id: int,
    *,
    user_id: int,
    verdict: Verdict,
    revision: int,
    comment: str = "",
    via_link: bool = False,
) -> ApprovalRequest:
    """Record one reviewer's approval or request for changes of `revision` at the current step.

    Refused when the post has changed since the reviewer saw it (`revision` is not the current one), when
    nothing is waiting for a decision, or when the person is not an approver of this step.
    """
    comment = comment.strip()
    post = session.scalar(sa.select(Post).where(Post.id == post_id).with_for_update())
    if post is None:
        raise LookupError(post_id)
    if revision != post.revision:
        raise ApprovalError("This post was edited after you opened it. Review the new version.")
    request = open_request(session, post_id)
    if request is None or request.status is not RequestStatus.PENDING:
        raise ApprovalError("This post is not waiting for approval.")
    step = request.steps[request.step]
    if user_id not in approvers(session, step):
        raise ApprovalError(f"You are not an approver of the step “{step['name']}”.")
    if verdict is Verdict.CHANGES_REQUESTED and not comment:
        raise ApprovalError("Say what should change, so the author knows what to do.")
    already = session.scalar(
        sa.select(ApprovalDecision.id).where(
            ApprovalDecision.request_id == request.id,
            ApprovalDecision.step == request.step,
            ApprovalDecision.user_id == user_id,
        )
    )
    if already is not None:
        raise ApprovalError("You have already approved this step; it waits for the other approvers.")
    user = session.get(User, user_id)
    name = user.name if user else "A reviewer"
    session.add(
        ApprovalDecision(
            request_id=request.id,
            revision=revision,
            step=request.step,
            user_id=user_id,
            reviewer_name=name,
            verdict=verdict,
            comment=comment or None,
            via_link=via_link,
        )
    )
    if comment:
        session.add(PostComment(post_id=post_id, author_id=user_id, author_name=name, body=comment,
                                internal=False, revision=revision))  # fmt: skip
    session.flush()
    if verdict is Verdict.CHANGES_REQUESTED:
        request.status = RequestStatus.CHANGES_REQUESTED
        request.decided_at = utcnow()
        post.state = PostState.CHANGES_REQUESTED
        _tell_author(session, post, request, f"{name} asked for changes", comment)
        webhook_events.approval(session, "approval.changes_requested", request, by=name, comment=comment)
    elif _step_complete(session, request, step):
        if request.step + 1 < len(request.steps):
            request.step += 1
            _ask_step(session, [request], request.submitted_by_id)
        else:
            request.status = RequestStatus.APPROVED
            request.decided_at = utcnow()
            # Approved and timed: it is scheduled again (its targets never stopped waiting for their time).
            post.state = PostState.SCHEDULED if post.scheduled_at is not None else PostState.APPROVED
            _tell_author(session, post, request, f"{name} approved a post", comment)
            webhook_events.approval(session, "approval.approved", request, by=name, comment=comment)
    session.flush()
    return request


def _step_complete(session: so.Session, request: ApprovalRequest, step: dict[str, Any]) -> bool:
    approved_by = set(
        session.scalars(
            sa.select(ApprovalDecision.user_id).where(
                ApprovalDecision.request_id == request.id,
                ApprovalDecision.step == request.step,
                ApprovalDecision.verdict == Verdict.APPROVED,
            )
        )
    )
    if step["rule"] == StepRule.ANY.value:
        return bool(approved_by)
    return approvers(session, step) <= approved_by


def approved_revisions(session: so.Session, post_ids: Iterable[int]) -> set[tuple[int, int]]:
    """(post id, revision) of every approval that stands. Works in a system session (the dispatcher)."""
    ids = list(post_ids)
    if not ids:
        return set()
    rows = session.execute(
        sa.select(ApprovalRequest.post_id, ApprovalRequest.revision).where(
            ApprovalRequest.post_id.in_(ids), ApprovalRequest.status == RequestStatus.APPROVED
        )
    )
    return {(r.post_id, r.revision) for r in rows}


def tenants_requiring_approval(session: so.Session, tenant_ids: Iterable[int]) -> set[int]:
    ids = list(tenant_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            sa.select(ApprovalPolicy.tenant_id).where(
                ApprovalPolicy.tenant_id.in_(ids), ApprovalPolicy.mode == ApprovalMode.REQUIRED
            )
        )
    )


# --- telling people -----------------------------------------------------------------------------------------


def _slug(session: so.Session) -> str:
    slug = session.scalar(sa.select(Tenant.slug).where(Tenant.id == bound_tenant_id(session)))
    assert slug is not None
    return slug


def _tell_author(session: so.Session, post: Post, request: ApprovalRequest, title: str, comment: str) -> None:
    link = mail.link("workspace.posts.detail", slug=_slug(session), post_id=post.id)
    body = f"{title}: “{_excerpt(post.text)}” (revision {request.revision})."
    if comment:
        body += f"\n\nTheir comment:\n{comment}"
    notify(
        session,
        tenant_id=post.tenant_id,
        user_ids=[post.author_id, request.submitted_by_id],
        event_key=f"approval:{request.id}:{request.status.value}:{request.step}",
        title=title,
        body=body,
        link=link,
    )


def _excerpt(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ask_step(session: so.Session, requests: Sequence[ApprovalRequest], created_by_id: int | None) -> None:
    """Email each approver of the requests' current step once, with one review link for all their posts."""
    by_user: dict[int, list[ApprovalRequest]] = {}
    for request in requests:
        for user_id in approvers(session, request.steps[request.step]):
            by_user.setdefault(user_id, []).append(request)
    posts = {p.id: p for p in session.scalars(sa.select(Post).where(Post.id.in_([r.post_id for r in requests])))}
    tenant = session.get(Tenant, bound_tenant_id(session))
    assert tenant is not None
    for user_id, theirs in sorted(by_user.items()):
        user = session.get(User, user_id)
        if user is None:
            continue
        raw, link = issue_link(session, user_id, [r.post_id for r in theirs], created_by_id)
        count = len(theirs)
        subject = (
            f"{tenant.name}: a post is waiting for your approval"
            if count == 1
            else f"{tenant.name}: {count} posts are waiting for your approval"
        )
        mail.send(
            user.email,
            subject,
            "approval_request",
            name=user.name,
            workspace=tenant.name,
            step=theirs[0].step_name,
            posts=[posts[r.post_id] for r in theirs],
            link=mail.link("review.page", token=raw),
            expires_at=link.expires_at,
        )


# --- review links -------------------------------------------------------------------------------------------


def issue_link(
    session: so.Session, user_id: int, post_ids: Sequence[int], created_by_id: int | None
) -> tuple[str, ReviewLink]:
    """A new review link for exactly `post_ids`; returns the secret (only its digest is stored) and the row."""
    raw, digest = tokens.new_token()
    days = current_app.config["APPROVAL_LINK_DAYS"]
    link = ReviewLink(
        token_hash=digest,
        user_id=user_id,
        post_ids=sorted(set(post_ids)),
        created_by_id=created_by_id,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(link)
    session.flush()
    return raw, link


def links(session: so.Session, post_id: int) -> list[ReviewLink]:
    return list(
        session.scalars(
            sa.select(ReviewLink)
            .where(sa.literal(post_id) == sa.any_(ReviewLink.post_ids))
            .order_by(ReviewLink.created_at.desc())
        )
    )


def revoke_link(session: so.Session, link_id: int) -> ReviewLink | None:
    link = session.get(ReviewLink, link_id)
    if link is not None and link.revoked_at is None:
        link.revoked_at = utcnow()
    return link


def link_is_live(link: ReviewLink, now: datetime | None = None) -> bool:
    return link.revoked_at is None and link.expires_at > (now or utcnow())


# --- comments -----------------------------------------------------------------------------------------------


def comments(session: so.Session, post_id: int, *, include_internal: bool) -> list[PostComment]:
    query = sa.select(PostComment).where(PostComment.post_id == post_id).order_by(PostComment.id)
    if not include_internal:
        query = query.where(PostComment.internal.is_(False))
    return list(session.scalars(query))


# --- the review page behind a link --------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkGrant:
    """What a live review link allows: one reviewer, in one workspace, on exactly these posts."""

    link_id: int
    tenant_id: int
    user_id: int
    post_ids: tuple[int, ...]


class LinkProblem(ApprovalError):
    """The link cannot be used; the message says why (unknown, expired, revoked)."""


def grant_for_token(raw: str) -> LinkGrant:
    """Find the link by the digest of its secret; LinkProblem when it is unknown, expired or revoked."""
    from tenants.scoping import system_session

    with system_session() as session:  # a review link names no workspace: its token finds it
        link = session.scalar(sa.select(ReviewLink).where(ReviewLink.token_hash == tokens.digest(raw)))
        if link is None:
            raise LinkProblem("This review link is not valid. Check that you copied all of it.")
        if link.revoked_at is not None:
            raise LinkProblem("This review link was withdrawn. Ask the sender for a new one.")
        if link.expires_at <= utcnow():
            raise LinkProblem("This review link has expired. Ask the sender for a new one.")
        return LinkGrant(link.id, link.tenant_id, link.user_id, tuple(link.post_ids))


# --- what a person sees and may do ----------------------------------------------------------------------------


def may_decide(session: so.Session, request: ApprovalRequest | None, user_id: int) -> bool:
    return (
        request is not None
        and request.status is RequestStatus.PENDING
        and user_id in approvers(session, request.steps[request.step])
    )


def _with_posts(session: so.Session, status: RequestStatus, order: Any) -> list[tuple[ApprovalRequest, Post]]:
    rows = session.execute(
        sa.select(ApprovalRequest, Post)
        .join(Post, Post.id == ApprovalRequest.post_id)
        .where(ApprovalRequest.status == status)
        .order_by(order, ApprovalRequest.id)
    ).all()
    return [(r, p) for r, p in rows]


def waiting_for(session: so.Session, user_id: int) -> list[tuple[ApprovalRequest, Post]]:
    """Requests of this workspace whose current step the user may decide, oldest first."""
    pending = _with_posts(session, RequestStatus.PENDING, ApprovalRequest.created_at)
    return [(r, p) for r, p in pending if may_decide(session, r, user_id)]


def sent_back(session: so.Session) -> list[tuple[ApprovalRequest, Post]]:
    """Posts whose reviewers asked for changes, oldest first."""
    return _with_posts(session, RequestStatus.CHANGES_REQUESTED, ApprovalRequest.decided_at)


MENTION = re.compile(r"@([\w.+-]+)")


def add_comment(
    session: so.Session, post_id: int, *, author: User, body: str, internal: bool, parent_id: int | None = None
) -> PostComment:
    """A comment on the post; members it @mentions (by the part of their email before the @) are told."""
    post = session.get(Post, post_id)
    if post is None:
        raise LookupError(post_id)
    body = body.strip()
    if not body:
        raise ApprovalError("Write a comment first.")
    if parent_id is not None:
        parent = session.get(PostComment, parent_id)
        if parent is None or parent.post_id != post_id:
            raise LookupError(parent_id)
        internal = internal or parent.internal  # a reply to an internal comment stays internal
    comment = PostComment(
        post_id=post_id,
        parent_id=parent_id,
        author_id=author.id,
        author_name=author.name,
        body=body,
        internal=internal,
        revision=post.revision,
    )
    session.add(comment)
    session.flush()
    handles = {m.lower() for m in MENTION.findall(body)}
    if handles:
        readers = _internal_readers(session) if internal else _all_readers(session)
        notify(
            session,
            tenant_id=post.tenant_id,
            user_ids=[
                u.id
                for u in session.execute(sa.select(User.id, User.email).where(User.id.in_(readers)))
                if u.email.split("@")[0].lower() in handles and u.id != author.id
            ],
            event_key=f"mention:{comment.id}",
            title=f"{author.name} mentioned you on a post",
            body=body,
            link=mail.link("workspace.posts.detail", slug=_slug(session), post_id=post_id),
        )
    return comment


def _all_readers(session: so.Session) -> set[int]:
    tenant_id = bound_tenant_id(session)
    assert tenant_id is not None
    return set(session.scalars(sa.select(Membership.user_id))) | set(agency.staff_for_client(tenant_id))


def _internal_readers(session: so.Session) -> set[int]:
    """Who reads internal comments: in a client an agency manages, only the agency's people; elsewhere the team
    that drafts (owners, admins, editors), never reviewers, viewers or review links."""
    tenant_id = bound_tenant_id(session)
    assert tenant_id is not None
    staff = agency.staff_for_client(tenant_id)
    if staff:
        return set(staff)
    return set(session.scalars(sa.select(Membership.user_id).where(Membership.role.in_(TEAM_ROLES))))


def sees_internal(tenant_kind: TenantKind, role: Role, acting_for_client: bool) -> bool:
    """Whether this reader sees internal comments (the rule of `_internal_readers`, for the request's reader)."""
    if tenant_kind is TenantKind.CLIENT:
        return acting_for_client
    return role in TEAM_ROLES


# Who sees internal comments: the people who draft and schedule (never reviewers, viewers or review links).
TEAM_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)
