"""Post → PostTarget (one per channel) → PublishAttempt (one per try, append-only)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from saas.channels.models import Channel
from saas.db import Base, db_enum, utc_now_default
from tenants.models import User
from tenants.scoping import TenantScoped


class PostState(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    CANCELED = "canceled"


class TargetState(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for due_at
    QUEUED = "queued"  # claimed by a dispatcher, a job is on its way
    PUBLISHING = "publishing"  # an attempt started: the network may be acting on it
    PUBLISHED = "published"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # we could not tell whether it went out: a person decides
    BLOCKED = "blocked"  # not allowed to go out (channel health, approval, billing)
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_TARGET_STATES

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


# Why a target of a channel paused by a person is blocked (saas.posts.queue matches on it to release them).
PAUSED_REASON = "The channel is paused: this post waits until someone resumes it."

FINAL_TARGET_STATES = frozenset(
    {TargetState.PUBLISHED, TargetState.FAILED, TargetState.UNCONFIRMED, TargetState.BLOCKED, TargetState.CANCELED}
)


class AttemptOutcome(enum.StrEnum):
    STARTED = "started"
    PUBLISHED = "published"
    RETRY = "retry"  # failed before the network acted; tried again later
    RATE_LIMITED = "rate_limited"
    UNKNOWN = "unknown"  # the network may have acted; resolved by key, read-back or a person
    FAILED = "failed"  # refused for good
    ABANDONED = "abandoned"  # the worker stopped mid-attempt (found by lease recovery)
    SKIPPED = "skipped"  # nothing sent: e.g. read-back found the post already live


class Post(TenantScoped, Base):
    __tablename__ = "posts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.Index("ix_posts_tenant_scheduled_at", "tenant_id", "scheduled_at"),
        sa.Index("ix_posts_tenant_series", "tenant_id", "series_id", postgresql_where=sa.text("series_id IS NOT NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    author_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    media_urls: so.Mapped[list[str]] = so.mapped_column(JSONB, default=list)
    # Attachments with alt text: [{"source": url or path, "mime_type": "", "alt": ""}] (saas.posts.outbound).
    media: so.Mapped[list[dict[str, str]]] = so.mapped_column(
        JSONB, default=list, server_default=sa.text("'[]'::jsonb")
    )
    # Follow-up posts of a thread, in order: [{"text": "...", "media": [...]}]; empty for a single post.
    thread: so.Mapped[list[dict[str, Any]]] = so.mapped_column(
        JSONB, default=list, server_default=sa.text("'[]'::jsonb")
    )
    content_warning: so.Mapped[str | None] = so.mapped_column(sa.Text)
    visibility: so.Mapped[str | None] = so.mapped_column(sa.String(16))  # None: the account's default
    language: so.Mapped[str | None] = so.mapped_column(sa.String(16))  # ISO 639-1
    revision: so.Mapped[int] = so.mapped_column(default=1)
    # Composer extras (issue 5): labels to filter the calendar by, notes only the team sees, and a
    # first comment kept with the post.
    tags: so.Mapped[list[str]] = so.mapped_column(
        ARRAY(sa.String(40)), default=list, server_default=sa.text("'{}'::varchar[]")
    )
    notes: so.Mapped[str | None] = so.mapped_column(sa.Text)
    first_comment: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # A draft has no targets yet (a target is what the dispatcher publishes), so the chosen channels and
    # their overrides wait here: [{"channel_id": 1, "text_override": "..." or null}].
    draft_targets: so.Mapped[list[dict[str, Any]]] = so.mapped_column(
        JSONB, default=list, server_default=sa.text("'[]'::jsonb")
    )
    # A repeating post (saas.posts.recurrence): the rule, the series' first post, and which occurrence this is.
    # Only one occurrence of a series exists ahead of time; the next is made when this one is due.
    # none_as_null: "no rule" must be SQL NULL, not JSON null, for the clock's `recurrence IS NOT NULL`.
    recurrence: so.Mapped[dict[str, Any] | None] = so.mapped_column(JSONB(none_as_null=True))
    series_id: so.Mapped[int | None]
    occurrence_no: so.Mapped[int | None]
    state: so.Mapped[PostState] = so.mapped_column(db_enum(PostState, "post_state"), default=PostState.DRAFT)
    # The moment in UTC, plus what the person chose: their zone and wall-clock time.
    scheduled_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64))
    local_time: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=False))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    updated_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), server_default=utc_now_default(), onupdate=sa.func.now()
    )

    author: so.Mapped[User | None] = so.relationship()
    targets: so.Mapped[list[PostTarget]] = so.relationship(
        back_populates="post", order_by="PostTarget.id", overlaps="targets"
    )


class PostTarget(TenantScoped, Base):
    """The post going to one channel, with its delivery state."""

    __tablename__ = "post_targets"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.UniqueConstraint("post_id", "channel_id"),
        sa.ForeignKeyConstraint(["tenant_id", "post_id"], ["posts.tenant_id", "posts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "channel_id"], ["channels.tenant_id", "channels.id"], ondelete="CASCADE"),
        # The dispatcher's scan: only rows still waiting.
        sa.Index("ix_post_targets_due", "due_at", postgresql_where=sa.text("state = 'scheduled'")),
        # Lease recovery: only rows in flight.
        sa.Index(
            "ix_post_targets_claimed_until",
            "claimed_until",
            postgresql_where=sa.text("state IN ('queued', 'publishing')"),
        ),
        sa.Index("ix_post_targets_tenant_channel", "tenant_id", "channel_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    post_id: so.Mapped[int]
    channel_id: so.Mapped[int]
    text_override: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # This channel's own attachments (same shape as Post.media); None: the post's media.
    media_override: so.Mapped[list[dict[str, str]] | None] = so.mapped_column(JSONB(none_as_null=True))
    state: so.Mapped[TargetState] = so.mapped_column(
        db_enum(TargetState, "target_state"), default=TargetState.SCHEDULED
    )
    scheduled_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    # When the dispatcher may next pick this up: scheduled_at, or later after a retry or a rate limit.
    due_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))
    claim_token: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    claimed_until: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    attempt_count: so.Mapped[int] = so.mapped_column(default=0)
    # Stable for this target and revision: every retry sends the same key, so the network can dedupe.
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(64))
    # Set when an attempt may have reached the network without our hearing back.
    outcome_unknown_since: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    # Steps taken on the network that the next attempt must resume, not redo: Instagram/Threads container
    # ids ("<idempotency key>:container:0" -> id), stored before the container is published.
    checkpoints: so.Mapped[dict[str, str] | None] = so.mapped_column(JSONB)
    remote_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    remote_url: so.Mapped[str | None] = so.mapped_column(sa.String(1000))
    published_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Why a blocked target is blocked ("billing", "channel"), so the cause can release it when it clears.
    blocked_reason: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    updated_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), server_default=utc_now_default(), onupdate=sa.func.now()
    )

    post: so.Mapped[Post] = so.relationship(back_populates="targets", overlaps="targets")
    channel: so.Mapped[Channel] = so.relationship(overlaps="post,targets")
    attempts: so.Mapped[list[PublishAttempt]] = so.relationship(
        order_by="PublishAttempt.attempt_no", overlaps="target", viewonly=True
    )

    @property
    def text(self) -> str:
        return self.text_override if self.text_override is not None else self.post.text


class PublishAttempt(TenantScoped, Base):
    """One try at publishing a target. Written before the network call; closed once, then never changed.

    Holds no tokens: only what happened, for people and for reconciliation.
    """

    __tablename__ = "publish_attempts"
    __table_args__ = (
        sa.UniqueConstraint("target_id", "attempt_no"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "target_id"], ["post_targets.tenant_id", "post_targets.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_publish_attempts_tenant_target", "tenant_id", "target_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    target_id: so.Mapped[int]
    attempt_no: so.Mapped[int]
    started_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    finished_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))
    outcome: so.Mapped[AttemptOutcome] = so.mapped_column(
        db_enum(AttemptOutcome, "attempt_outcome"), default=AttemptOutcome.STARTED
    )
    error_class: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    http_status: so.Mapped[int | None]
    latency_ms: so.Mapped[int | None]
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(64))
    remote_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    # What happened and what to do next, in words for the user.
    message: so.Mapped[str | None] = so.mapped_column(sa.Text)

    target: so.Mapped[PostTarget] = so.relationship(overlaps="attempts")
