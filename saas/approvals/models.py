"""The approval policy of a workspace and the requests, decisions, comments and review links of its posts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from saas.db import Base, db_enum, utc_now_default
from tenants.scoping import TenantScoped


class ApprovalMode(enum.StrEnum):
    NONE = "none"  # posts are scheduled as written
    OPTIONAL = "optional"  # a post may be sent for review; an unapproved one still publishes
    REQUIRED = "required"  # a post publishes only with an approval of its current revision


class StepRule(enum.StrEnum):
    ANY = "any"  # one approver's yes completes the step
    ALL = "all"  # every approver of the step must say yes


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    SUPERSEDED = "superseded"  # the post was edited: a new revision needs its own request


class Verdict(enum.StrEnum):
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class ApprovalPolicy(TenantScoped, Base):
    """How a workspace approves posts: the mode, and the steps in order as
    [{"name": str, "rule": "any"|"all", "roles": [role, ...], "user_ids": [id, ...]}]."""

    __tablename__ = "approval_policies"
    __table_args__ = (sa.UniqueConstraint("tenant_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    mode: so.Mapped[ApprovalMode] = so.mapped_column(db_enum(ApprovalMode, "approval_mode"))
    steps: so.Mapped[list[dict[str, Any]]] = so.mapped_column(JSONB, default=list)
    updated_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), server_default=utc_now_default(), onupdate=sa.func.now()
    )


class ApprovalRequest(TenantScoped, Base):
    """One revision of one post going through the steps. The steps are copied in when it is submitted, so
    a policy changed meanwhile does not move the goalposts of a request under way."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.ForeignKeyConstraint(["tenant_id", "post_id"], ["posts.tenant_id", "posts.id"], ondelete="CASCADE"),
        sa.Index("ix_approval_requests_tenant_post", "tenant_id", "post_id"),
        # At most one request under way per post.
        sa.Index(
            "uq_approval_requests_open",
            "post_id",
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'changes_requested')"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int]
    revision: so.Mapped[int]
    steps: so.Mapped[list[dict[str, Any]]] = so.mapped_column(JSONB)
    step: so.Mapped[int] = so.mapped_column(default=0)  # index into steps of the step under way
    status: so.Mapped[RequestStatus] = so.mapped_column(
        db_enum(RequestStatus, "approval_request_status"), default=RequestStatus.PENDING
    )
    submitted_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    decided_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))

    decisions: so.Mapped[list[ApprovalDecision]] = so.relationship(
        order_by="ApprovalDecision.id", viewonly=True, overlaps="request"
    )

    @property
    def step_name(self) -> str:
        return str(self.steps[self.step]["name"]) if self.step < len(self.steps) else ""


class ApprovalDecision(TenantScoped, Base):
    """Who approved or sent back which revision at which step. Append-only: the post's approval history."""

    __tablename__ = "approval_decisions"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "request_id"], ["approval_requests.tenant_id", "approval_requests.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_approval_decisions_tenant_request", "tenant_id", "request_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    request_id: so.Mapped[int]
    revision: so.Mapped[int]
    step: so.Mapped[int]
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_name: so.Mapped[str] = so.mapped_column(sa.String(254))  # kept if the user goes
    verdict: so.Mapped[Verdict] = so.mapped_column(db_enum(Verdict, "approval_verdict"))
    comment: so.Mapped[str | None] = so.mapped_column(sa.Text)
    via_link: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())

    request: so.Mapped[ApprovalRequest] = so.relationship(overlaps="decisions")


class PostComment(TenantScoped, Base):
    """A comment on a post; `internal` ones are for the agency only, the others are shared with the client."""

    __tablename__ = "post_comments"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.ForeignKeyConstraint(["tenant_id", "post_id"], ["posts.tenant_id", "posts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "parent_id"], ["post_comments.tenant_id", "post_comments.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_post_comments_tenant_post", "tenant_id", "post_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int]
    parent_id: so.Mapped[int | None]
    author_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    author_name: so.Mapped[str] = so.mapped_column(sa.String(254))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    internal: so.Mapped[bool] = so.mapped_column(default=False)
    revision: so.Mapped[int]  # the revision the comment was written about
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())


class ReviewLink(TenantScoped, Base):
    """An emailed link that lets one reviewer decide on exactly `post_ids` without logging in.

    Only the SHA-256 digest of the secret is stored (tenants.tokens). Expires, and can be revoked.
    """

    __tablename__ = "review_links"
    __table_args__ = (sa.Index("ix_review_links_tenant_created", "tenant_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    post_ids: so.Mapped[list[int]] = so.mapped_column(ARRAY(sa.Integer))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    expires_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
