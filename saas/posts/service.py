"""Compose and schedule posts, and act on their targets (cancel, retry, confirm).

Scheduling is data: a PostTarget row with its due time. Nothing goes to Redis
here, so edits, cancels and a Redis wipe can neither lose nor duplicate a post.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.lifecycle import Action
from publishers.base import Media, OutboundPost
from saas import entitlements, timezones
from saas.channels.models import Channel, ChannelHealth
from saas.posts.models import FINAL_TARGET_STATES, Post, PostState, PostTarget, TargetState
from saas.publishing.networks import publisher_for
from tenants.scoping import bound_tenant_id

MAX_TEXT = 10_000  # beyond any network's limit; each channel's own limit is checked too
MAX_AHEAD = timedelta(days=730)


class ComposeError(ValueError):
    """Input that cannot be scheduled; `field` names the form field to show it next to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TargetActionError(ValueError):
    """The action does not apply to the target in its current state; the message says why."""


@dataclass(frozen=True)
class Schedule:
    publish_now: bool
    local_time: datetime | None  # wall-clock time in `timezone`, naive
    timezone: str


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def resolve_time(schedule: Schedule, now: datetime) -> datetime:
    """The UTC moment the post should go out, or ComposeError."""
    if schedule.publish_now:
        return now
    if schedule.local_time is None:
        raise ComposeError("when", "Choose a date and time, or pick “Publish now”.")
    if not timezones.is_timezone(schedule.timezone):
        raise ComposeError("when", f"Unknown time zone {schedule.timezone!r}.")
    try:
        moment = timezones.to_utc(schedule.local_time, schedule.timezone)
    except timezones.LocalTimeError as exc:
        raise ComposeError("when", str(exc)) from None
    if moment <= now:
        raise ComposeError(
            "when",
            f"{schedule.local_time:%-d %b %Y, %H:%M} in {schedule.timezone} has already passed. "
            "Pick a later time or choose “Publish now”.",
        )
    if moment > now + MAX_AHEAD:
        raise ComposeError("when", "Posts can be scheduled up to two years ahead.")
    return moment


def schedule_post(
    session: so.Session,
    *,
    author_id: int,
    text: str,
    channel_ids: list[int],
    schedule: Schedule,
    now: datetime | None = None,
    media: list[dict[str, str]] | None = None,
) -> Post:
    """Validate and create a scheduled post with one target per channel.

    `media` ({"source", "mime_type", "alt"} each) is validated with the text: a network that
    requires media (Instagram) refuses the post here, not at publish time.
    """
    now = now or utcnow()
    text = text.strip()
    if not text:
        raise ComposeError("text", "Write the text of the post.")
    if len(text) > MAX_TEXT:
        raise ComposeError("text", f"Use at most {MAX_TEXT:,} characters.")
    if not channel_ids:
        raise ComposeError("channels", "Choose at least one channel.")
    channels = list(session.scalars(sa.select(Channel).where(Channel.id.in_(channel_ids))))
    if len(channels) != len(set(channel_ids)):
        raise ComposeError("channels", "One of the chosen channels no longer exists. Reload the page.")
    for channel in channels:
        if channel.health is not ChannelHealth.OK:
            raise ComposeError("channels", f"@{channel.handle} needs attention before it can publish: reconnect it.")
        attachments = tuple(Media(m["source"], m.get("mime_type", ""), m.get("alt", "")) for m in media or ())
        problems = publisher_for(channel.network).validate(OutboundPost(text=text, media=attachments), channel.limits)
        if problems:
            raise ComposeError("text", f"For @{channel.handle}: " + " ".join(problems))
    scheduled_at = resolve_time(schedule, now)
    try:
        entitlements.require(session, bound_tenant_id(session), Action.SCHEDULE_POST, month_of=scheduled_at)
    except entitlements.LimitReached as exc:
        raise ComposeError("when", exc.message) from None
    post = Post(
        author_id=author_id,
        text=text,
        media_urls=[],
        media=list(media or []),
        state=PostState.SCHEDULED,
        scheduled_at=scheduled_at,
        timezone=schedule.timezone,
        local_time=schedule.local_time,
    )
    session.add(post)
    session.flush()
    for channel in sorted(channels, key=lambda c: c.id):
        session.add(
            PostTarget(
                post_id=post.id,
                channel_id=channel.id,
                scheduled_at=scheduled_at,
                due_at=scheduled_at,
                idempotency_key=new_idempotency_key(),
            )
        )
    session.flush()
    return post


def reschedule(session: so.Session, post_id: int, target_id: int, moment: datetime) -> PostTarget | None:
    """A blocked target goes out at a new time (chosen by a person: nothing held back fires on its own)."""
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state is not TargetState.BLOCKED:
        raise TargetActionError("Only a blocked post can be rescheduled here.")
    try:  # the post already holds its place in the month's allowance: nothing is added
        entitlements.require(session, target.tenant_id, Action.SCHEDULE_POST, month_of=moment, adding=0)
    except entitlements.LimitReached as exc:
        raise TargetActionError(exc.message) from None
    target.scheduled_at = moment
    _requeue(target, moment)
    return target


def posts(session: so.Session, limit: int = 200) -> list[Post]:
    return list(
        session.scalars(
            sa.select(Post)
            .options(so.selectinload(Post.targets).joinedload(PostTarget.channel))
            .order_by(Post.scheduled_at.desc().nulls_last(), Post.id.desc())
            .limit(limit)
        )
    )


def post_with_history(session: so.Session, post_id: int) -> Post | None:
    return session.scalar(
        sa.select(Post)
        .where(Post.id == post_id)
        .options(
            so.selectinload(Post.targets).selectinload(PostTarget.attempts),
            so.selectinload(Post.targets).joinedload(PostTarget.channel),
        )
    )


def delivery_state(current: PostState, target_states: set[TargetState]) -> PostState:
    """The post's state given its targets' delivery states."""
    if not target_states or not target_states <= FINAL_TARGET_STATES:
        if current in (PostState.PUBLISHED, PostState.PARTIALLY_PUBLISHED, PostState.FAILED):
            return PostState.SCHEDULED
        return current
    if target_states == {TargetState.CANCELED}:
        return PostState.CANCELED
    if target_states <= {TargetState.PUBLISHED, TargetState.CANCELED}:
        return PostState.PUBLISHED
    if TargetState.PUBLISHED in target_states:
        return PostState.PARTIALLY_PUBLISHED
    return PostState.FAILED


def settle_post(post: Post) -> None:
    """Derive the post's delivery state from its (loaded) targets."""
    post.state = delivery_state(post.state, {t.state for t in post.targets})


def settle_post_by_id(session: so.Session, post_id: int) -> None:
    """The same, with two light statements and no objects loaded (the publish job's hot path)."""
    current = session.scalar(sa.select(Post.state).where(Post.id == post_id).with_for_update())
    states = set(session.scalars(sa.select(PostTarget.state).where(PostTarget.post_id == post_id)))
    if current is not None:
        new = delivery_state(current, states)
        if new is not current:
            session.execute(sa.update(Post).where(Post.id == post_id).values(state=new))


def _target(session: so.Session, post_id: int, target_id: int) -> PostTarget | None:
    # Locked: the dispatcher may be claiming this very row.
    return session.scalar(
        sa.select(PostTarget).where(PostTarget.id == target_id, PostTarget.post_id == post_id).with_for_update()
    )


def cancel_target(session: so.Session, post_id: int, target_id: int) -> PostTarget | None:
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state not in (TargetState.SCHEDULED, TargetState.BLOCKED):
        raise TargetActionError("It is already being published or has finished, so it can no longer be canceled.")
    target.state = TargetState.CANCELED
    settle_post(target.post)
    return target


def _requeue(target: PostTarget, now: datetime) -> None:
    target.state = TargetState.SCHEDULED
    target.due_at = now
    target.claim_token = None
    target.claimed_until = None
    target.last_error = None
    target.blocked_reason = None
    settle_post(target.post)


def check_again(session: so.Session, post_id: int, target_id: int) -> PostTarget | None:
    """Unconfirmed: look on the network again (read-back), without publishing blindly."""
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state is not TargetState.UNCONFIRMED:
        raise TargetActionError("Only an unconfirmed post can be checked again.")
    _requeue(target, utcnow())
    return target


def retry(session: so.Session, post_id: int, target_id: int) -> PostTarget | None:
    """Failed or blocked: try again (same idempotency key, so no duplicate where the network can tell)."""
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state not in (TargetState.FAILED, TargetState.BLOCKED):
        raise TargetActionError("Only a failed or blocked post can be tried again.")
    if target.channel.health is not ChannelHealth.OK:
        raise TargetActionError(f"Reconnect @{target.channel.handle} first, then try again.")
    _requeue(target, utcnow())
    return target


def publish_again(session: so.Session, post_id: int, target_id: int) -> PostTarget | None:
    """Unconfirmed, and the person checked it is not live: publish as a new post (new key)."""
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state is not TargetState.UNCONFIRMED:
        raise TargetActionError("Only an unconfirmed post can be published again.")
    target.idempotency_key = new_idempotency_key()
    target.outcome_unknown_since = None
    _requeue(target, utcnow())
    return target


def mark_published(session: so.Session, post_id: int, target_id: int, url: str | None) -> PostTarget | None:
    """Unconfirmed, and the person found it live: record it as published."""
    target = _target(session, post_id, target_id)
    if target is None:
        return None
    if target.state is not TargetState.UNCONFIRMED:
        raise TargetActionError("Only an unconfirmed post can be marked as published.")
    target.state = TargetState.PUBLISHED
    target.remote_url = url or None
    target.published_at = utcnow()
    target.outcome_unknown_since = None
    target.last_error = None
    settle_post(target.post)
    return target
