"""Compose and schedule posts, and act on their targets (cancel, retry, confirm).

Scheduling is data: a PostTarget row with its due time. Nothing goes to Redis
here, so edits, cancels and a Redis wipe can neither lose nor duplicate a post.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.lifecycle import Action
from publishers.base import Media, OutboundPost, ThreadPart
from saas import entitlements, timezones
from saas.approvals import service as approvals
from saas.channels.models import Channel, ChannelHealth
from saas.media import service as media_service
from saas.media.models import MediaItem
from saas.posts import queue, recurrence
from saas.posts.models import FINAL_TARGET_STATES, PAUSED_REASON, Post, PostState, PostTarget, TargetState
from saas.publishing.networks import publisher_for
from saas.webhooks import events as webhook_events
from tenants.scoping import bound_tenant_id

if TYPE_CHECKING:
    from saas.posts.listing import Document

MAX_TEXT = 10_000  # beyond any network's limit; each channel's own limit is checked too
MAX_AHEAD = timedelta(days=730)
MAX_TAG = 40


@dataclass(frozen=True)
class TimeChoice:
    """A time the person can pick instead of the one refused: shown as a button beside the error."""

    label: str
    local_time: datetime | None  # None with publish_now
    fold: int = 0
    publish_now: bool = False


class ComposeError(ValueError):
    """Input that cannot be scheduled; `field` names the form field to show it next to.

    `choices` offer valid times instead of a refused one (DST gap, ambiguous hour, past time).
    """

    def __init__(self, field: str, message: str, choices: tuple[TimeChoice, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.choices = choices


class NotEditable(ComposeError):
    """Something of the post was already sent (or is being sent): it can no longer be changed."""


class TargetActionError(ValueError):
    """The action does not apply to the target in its current state; the message says why."""


@dataclass(frozen=True)
class Schedule:
    publish_now: bool
    local_time: datetime | None  # wall-clock time in `timezone`, naive
    timezone: str
    # Which of a twice-happening wall time (clocks going back): 0 the first, 1 the second, None not said yet.
    fold: int | None = None
    # "Add to queue": each channel's next free posting slot instead of one chosen time.
    queue: bool = False


@dataclass(frozen=True)
class Extras:
    """What the composer adds to the base text: per-channel overrides, a thread, tags, notes, a first comment."""

    overrides: Mapping[int, str] = field(default_factory=dict)  # channel id → its own text
    thread: tuple[str, ...] = ()  # follow-up parts after the base text
    tags: tuple[str, ...] = ()
    notes: str = ""
    first_comment: str = ""
    media_ids: tuple[int, ...] = ()  # from the workspace's media library, in order
    media_overrides: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # channel id → its own media
    repeat: recurrence.Rule | None = None  # a repeating series starting with this post


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def local_moment(schedule: Schedule) -> datetime:
    """The UTC moment of the schedule's wall time, or ComposeError offering valid times instead."""
    assert schedule.local_time is not None
    if not timezones.is_timezone(schedule.timezone):
        raise ComposeError("when", f"Unknown time zone {schedule.timezone!r}.")
    try:
        return timezones.to_utc(schedule.local_time, schedule.timezone, schedule.fold)
    except timezones.LocalTimeError as exc:
        choices = tuple(TimeChoice(f"{t:%H:%M} {schedule.timezone}", t) for t in exc.alternatives)
        raise ComposeError("when", str(exc), choices) from None
    except timezones.AmbiguousTimeError as exc:
        zone = schedule.timezone
        choices = tuple(
            TimeChoice(
                f"{schedule.local_time:%H:%M} {timezones.to_local(moment, zone).tzname()} ({label})",
                schedule.local_time,
                fold,
            )
            for fold, (moment, label) in enumerate(zip(exc.choices, ("first", "second"), strict=True))
        )
        raise ComposeError("when", str(exc), choices) from None


def resolve_time(schedule: Schedule, now: datetime) -> datetime:
    """The UTC moment the post should go out, or ComposeError."""
    if schedule.publish_now:
        return now
    if schedule.local_time is None:
        raise ComposeError("when", "Choose a date and time, or pick “Publish now”.")
    moment = local_moment(schedule)
    if moment <= now:
        raise ComposeError(
            "when",
            f"{schedule.local_time:%-d %b %Y, %H:%M} in {schedule.timezone} has already passed. "
            "Pick a later time or choose “Publish now”.",
            (TimeChoice("Publish now", None, publish_now=True),),
        )
    if moment > now + MAX_AHEAD:
        raise ComposeError("when", "Posts can be scheduled up to two years ahead.")
    return moment


def _clean_extras(extras: Extras) -> Extras:
    tags = tuple(dict.fromkeys(t.strip().lower() for t in extras.tags if t.strip()))
    for tag in tags:
        if len(tag) > MAX_TAG:
            raise ComposeError("tags", f"Keep each tag to {MAX_TAG} characters; “{tag[:20]}…” is longer.")
    overrides = {cid: text.strip() for cid, text in extras.overrides.items() if text and text.strip()}
    thread = tuple(part.strip() for part in extras.thread if part.strip())
    return Extras(
        overrides,
        thread,
        tags,
        extras.notes.strip(),
        extras.first_comment.strip(),
        tuple(dict.fromkeys(extras.media_ids)),
        {cid: tuple(dict.fromkeys(ids)) for cid, ids in extras.media_overrides.items()},
        extras.repeat,
    )


def _media(session: so.Session, extras: Extras) -> dict[int, MediaItem]:
    """Every library item the post or a channel uses, by id; ComposeError if one is not (or no longer) there."""
    wanted = list(dict.fromkeys([*extras.media_ids, *(i for ids in extras.media_overrides.values() for i in ids)]))
    found = {m.id: m for m in media_service.by_ids(session, wanted)}
    if len(found) != len(wanted):
        raise ComposeError("media", "One of the chosen media files is no longer in the library. Choose again.")
    return found


def _attachments(ids: tuple[int, ...], items: Mapping[int, MediaItem]) -> list[dict[str, str]]:
    return [media_service.attachment(items[i]) for i in ids]


class UnknownChannels(ComposeError):
    """Channel ids that are not (or no longer) the workspace's; `ids` names them for the API."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__("channels", "One of the chosen channels no longer exists. Reload the page.")
        self.ids = ids


def _channels(session: so.Session, channel_ids: list[int]) -> list[Channel]:
    channels = list(session.scalars(sa.select(Channel).where(Channel.id.in_(channel_ids))))
    if len(channels) != len(set(channel_ids)):
        raise UnknownChannels(sorted(set(channel_ids) - {c.id for c in channels}))
    return sorted(channels, key=lambda c: c.id)


def check_channel(
    channel: Channel,
    text: str,
    extras: Extras,
    items: Mapping[int, MediaItem],
    outside: list[dict[str, str]] | None = None,
) -> None:
    """The network's own rules for this channel's version of the post: ComposeError naming channel and limit."""
    ids = extras.media_overrides.get(channel.id, extras.media_ids)
    media = tuple(Media(source=str(i), mime_type=items[i].mime_type) for i in ids) + tuple(
        Media(m["source"], m.get("mime_type", ""), m.get("alt", "")) for m in outside or ()
    )
    post = OutboundPost(text=text, media=media, thread=tuple(ThreadPart(part) for part in extras.thread))
    publisher = publisher_for(channel.network)
    problems = publisher.validate(post, channel.limits)
    caps = publisher.capabilities_for(channel.limits)
    for item in (items[i] for i in ids):
        limit = caps.max_video_bytes if item.is_video else caps.max_image_bytes
        if item.size_bytes > limit:
            problems.append(
                f"{caps.display_name} takes {'videos' if item.is_video else 'images'} up to "
                f"{limit / 1e6:.0f} MB; {item.filename} is {item.size_bytes / 1e6:.1f} MB."
            )
    if problems:
        where = f"override-{channel.id}" if channel.id in extras.overrides else "text"
        raise ComposeError(where, f"For @{channel.handle}: " + " ".join(problems))


def _editable(session: so.Session, post_id: int) -> Post:
    post = session.scalar(
        sa.select(Post).where(Post.id == post_id).options(so.selectinload(Post.targets)).with_for_update()
    )
    if post is None:
        raise LookupError(post_id)
    if any(t.state is not TargetState.SCHEDULED or t.attempt_count for t in post.targets):
        raise NotEditable("text", "This post is already being published or has been, so it can no longer be edited.")
    return post


def _fill(post: Post, text: str, extras: Extras, items: Mapping[int, MediaItem]) -> None:
    post.text = text
    post.media = _attachments(extras.media_ids, items)
    post.thread = [{"text": part} for part in extras.thread]
    post.tags = list(extras.tags)
    post.notes = extras.notes or None
    post.first_comment = extras.first_comment or None


def schedule_post(
    session: so.Session,
    *,
    author_id: int,
    text: str,
    channel_ids: list[int],
    schedule: Schedule,
    now: datetime | None = None,
    extras: Extras | None = None,
    post_id: int | None = None,
    media: list[dict[str, str]] | None = None,
    request_approval: bool = True,
) -> Post:
    """Validate and create (or, with `post_id`, replace) a scheduled post with one target per channel.

    The one entry point that checks a post may go out: text by each channel's own network rules, the
    channels, the time, the plan's limits. `post_id` schedules an existing draft or edits a post nothing
    was sent for yet. `media` ({"source", "mime_type", "alt"} each) are attachments from outside the
    media library, after the library's; a network that requires media (Instagram) refuses the post here.
    `request_approval=False` is for a caller that sends several posts for approval together right after.
    """
    now = now or utcnow()
    extras = _clean_extras(extras or Extras())
    text = text.strip()
    if not text:
        raise ComposeError("text", "Write the text of the post.")
    if len(text) > MAX_TEXT:
        raise ComposeError("text", f"Use at most {MAX_TEXT:,} characters.")
    if not channel_ids:
        raise ComposeError("channels", "Choose at least one channel.")
    channels = _channels(session, channel_ids)
    items = _media(session, extras)
    for channel in channels:
        if channel.health is not ChannelHealth.OK:
            raise ComposeError("channels", f"@{channel.handle} needs attention before it can publish: reconnect it.")
        check_channel(channel, extras.overrides.get(channel.id, text), extras, items, media or [])
    if extras.repeat is not None and (schedule.publish_now or schedule.queue):
        raise ComposeError("repeat", "A repeating post needs a date and time for its first occurrence.")
    slots = _queue_slots(session, channels, schedule, now) if schedule.queue else {}
    if slots:
        first = min(channels, key=lambda c: slots[c.id][1])
        local_time, scheduled_at = slots[first.id]
        schedule = Schedule(False, local_time, queue.zone_of(first, schedule.timezone))
    else:
        scheduled_at = resolve_time(schedule, now)
    existing = _editable(session, post_id) if post_id is not None else None
    # An edit of a scheduled post already holds its place in the month's allowance; a draft does not.
    adding = 0 if existing is not None and existing.state is not PostState.DRAFT else 1
    try:
        entitlements.require(
            session, bound_tenant_id(session), Action.SCHEDULE_POST, month_of=scheduled_at, adding=adding
        )
    except entitlements.LimitReached as exc:
        raise ComposeError("when", exc.message) from None
    if existing is None:
        post = Post(author_id=author_id, media_urls=[])
        session.add(post)
    else:
        post = existing
        for target in post.targets:
            session.delete(target)
        post.revision += 1
    _fill(post, text, extras, items)
    post.media = [*post.media, *(dict(m) for m in media or ())]
    post.state = PostState.SCHEDULED
    post.scheduled_at = scheduled_at
    post.timezone = schedule.timezone
    post.local_time = None if schedule.publish_now else schedule.local_time
    post.draft_targets = []
    post.recurrence = extras.repeat.as_json() if extras.repeat else None
    session.flush()
    _start_series(post, extras.repeat)
    for channel in channels:
        session.add(
            PostTarget(
                post_id=post.id,
                channel_id=channel.id,
                text_override=extras.overrides.get(channel.id),
                media_override=_attachments(extras.media_overrides[channel.id], items)
                if channel.id in extras.media_overrides
                else None,
                # A channel paused by a person holds its posts (saas.posts.queue.pause).
                state=TargetState.BLOCKED if channel.paused_at else TargetState.SCHEDULED,
                last_error=PAUSED_REASON if channel.paused_at else None,
                blocked_reason="paused" if channel.paused_at else None,
                scheduled_at=slots[channel.id][1] if slots else scheduled_at,
                due_at=slots[channel.id][1] if slots else scheduled_at,
                idempotency_key=new_idempotency_key(),
            )
        )
    session.flush()
    session.expire(post, ["targets"])
    webhook_events.post_scheduled(session, post, [c.id for c in channels])
    # A new revision needs its own approval: what was approved before no longer counts.
    if request_approval:
        approvals.restart(session, post, author_id, new=existing is None)
    else:
        approvals.supersede(session, post.id)
    return post


def _start_series(post: Post, rule: recurrence.Rule | None) -> None:
    """A rule starts a series at this post, or changes the series it is already in from here on (once the
    post has its id; `post.recurrence` is set before, with the rest of the post).

    Without a rule the series ends here (an occurrence keeps its series id, so the series is
    never picked up again from an earlier occurrence).
    """
    if rule is None:
        if post.series_id == post.id:
            post.series_id = post.occurrence_no = None
        return
    if post.series_id is None:
        post.series_id = post.id
        post.occurrence_no = 1


def _queue_slots(
    session: so.Session, channels: list[Channel], schedule: Schedule, now: datetime
) -> dict[int, tuple[datetime, datetime]]:
    """Each channel's next free slot as (local wall time in the channel's zone, UTC)."""
    found = {}
    for channel in channels:
        try:
            found[channel.id] = queue.next_free_slot(
                session, channel.id, queue.zone_of(channel, schedule.timezone), now
            )
        except queue.QueueError as exc:
            raise ComposeError("when", f"@{channel.handle}: {exc}") from None
    return found


def save_draft(
    session: so.Session,
    *,
    author_id: int,
    text: str,
    channel_ids: list[int],
    schedule: Schedule,
    extras: Extras | None = None,
    post_id: int | None = None,
) -> Post:
    """Keep whatever is written so far: no target is created, so nothing can go out.

    Only what would lose data is refused (a channel of another workspace, a time that does not exist).
    """
    extras = _clean_extras(extras or Extras())
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ComposeError("text", f"Use at most {MAX_TEXT:,} characters.")
    channels = _channels(session, channel_ids)
    items = _media(session, extras)
    moment = local_moment(schedule) if schedule.local_time is not None and not schedule.publish_now else None
    if post_id is None:
        post = Post(author_id=author_id, media_urls=[])
        session.add(post)
    else:
        post = _editable(session, post_id)
        for target in post.targets:
            session.delete(target)
        post.revision += 1
        approvals.supersede(session, post.id)
    _fill(post, text, extras, items)
    post.state = PostState.DRAFT
    post.recurrence = extras.repeat.as_json() if extras.repeat else None  # takes effect when scheduled
    post.scheduled_at = moment
    post.timezone = schedule.timezone
    post.local_time = schedule.local_time if moment else None
    post.draft_targets = [
        {
            "channel_id": c.id,
            "text_override": extras.overrides.get(c.id),
            **({"media_ids": list(extras.media_overrides[c.id])} if c.id in extras.media_overrides else {}),
        }
        for c in channels
    ]
    session.flush()
    session.expire(post, ["targets"])
    return post


def schedule_draft(session: so.Session, post_id: int, author_id: int, now: datetime | None = None) -> Post:
    """Schedule a saved draft as it stands (its channels, time, overrides and media) without asking for
    approval yet; ComposeError says what the draft still lacks, exactly as the composer would."""
    post = session.get(Post, post_id)
    if post is None:
        raise LookupError(post_id)
    if post.state is not PostState.DRAFT:
        raise ComposeError("text", "This post is not a draft.")
    if post.local_time is None or post.scheduled_at is None:
        raise ComposeError("when", "Choose a date and time for this draft.")
    fold = 0 if timezones.to_utc(post.local_time, post.timezone, 0) == post.scheduled_at else 1
    library = [m for m in post.media or () if m.get("media_id")]
    return schedule_post(
        session,
        author_id=author_id,
        text=post.text,
        channel_ids=[int(d["channel_id"]) for d in post.draft_targets or ()],
        schedule=Schedule(False, post.local_time, post.timezone, fold),
        now=now,
        extras=Extras(
            overrides={int(d["channel_id"]): d["text_override"] for d in post.draft_targets if d.get("text_override")},
            thread=tuple(str(part.get("text") or "") for part in post.thread or ()),
            tags=tuple(post.tags or ()),
            notes=post.notes or "",
            first_comment=post.first_comment or "",
            media_ids=tuple(int(m["media_id"]) for m in library),
            media_overrides={
                int(d["channel_id"]): tuple(int(i) for i in d["media_ids"])
                for d in post.draft_targets
                if "media_ids" in d
            },
            repeat=recurrence.Rule.from_json(post.recurrence) if post.recurrence else None,
        ),
        post_id=post.id,
        media=[dict(m) for m in post.media or () if not m.get("media_id")],
        request_approval=False,
    )


@dataclass(frozen=True)
class Submission:
    """What "send for approval" did: the requests it opened, and the drafts it left with the reason."""

    requests: list[approvals.ApprovalRequest]
    left: list[tuple[Post, str]]


def submit_for_approval(
    session: so.Session, post_ids: list[int], actor_id: int, now: datetime | None = None
) -> Submission:
    """Send posts for approval together (one email per approver for all of them). A draft is scheduled first,
    as it stands; one that cannot be (no channel, no time, a time passed) stays a draft, with the reason."""
    now = now or utcnow()
    ready: list[int] = []
    left: list[tuple[Post, str]] = []
    for post in session.scalars(sa.select(Post).where(Post.id.in_(post_ids)).order_by(Post.scheduled_at, Post.id)):
        if post.state is not PostState.DRAFT:
            ready.append(post.id)
            continue
        try:
            with session.begin_nested():  # a draft that cannot be scheduled leaves nothing half done
                schedule_draft(session, post.id, actor_id, now)
        except ComposeError as exc:
            session.refresh(post)
            left.append((post, exc.message))
        else:
            ready.append(post.id)
    if len(ready) + len(left) != len(set(post_ids)):
        raise LookupError(post_ids)
    requests = approvals.submit(session, ready, actor_id) if ready else []
    return Submission(requests, left)


def submit_week(session: so.Session, actor_id: int, now: datetime | None = None, days: int = 7) -> Submission:
    """Send every draft and scheduled post of the next `days` not yet in review or approved, in one action."""
    now = now or utcnow()
    ids = approvals.unsubmitted_between(session, now, now + timedelta(days=days))
    if not ids:
        raise approvals.ApprovalError(f"Nothing of the next {days} days is waiting to be sent for approval.")
    return submit_for_approval(session, ids, actor_id, now)


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


def posts_by_id(session: so.Session, post_ids: list[int]) -> list[Post]:
    """These posts, in the order given."""
    found = {p.id: p for p in session.scalars(sa.select(Post).where(Post.id.in_(post_ids)))}
    return [found[i] for i in post_ids if i in found]


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
    webhook_events.emit_for_target(session, "post.published", target.id)
    return target


class PostActionError(ValueError):
    """The post-level action does not apply in the post's current state; the message says why."""


def locked_post(session: so.Session, post_id: int) -> Post | None:
    """The post with its targets, its row locked until the transaction ends (an edit checking what it read)."""
    return session.scalar(
        sa.select(Post).where(Post.id == post_id).options(so.selectinload(Post.targets)).with_for_update()
    )


def move_post(session: so.Session, post_id: int, schedule: Schedule, now: datetime | None = None) -> Post | None:
    """Move a post (and its targets still waiting) to a new wall time; targets already in flight or done stay."""
    post = locked_post(session, post_id)
    if post is None:
        return None
    waiting = [t for t in post.targets if t.state in (TargetState.SCHEDULED, TargetState.BLOCKED)]
    if post.targets and not waiting:
        raise PostActionError("Nothing of this post is waiting to go out, so there is nothing to move.")
    if post.state is PostState.DRAFT:
        moment = local_moment(schedule) if schedule.local_time is not None else None
    else:
        moment = resolve_time(schedule, now or utcnow())
    previous_moment = post.scheduled_at
    post.scheduled_at = moment
    post.timezone = schedule.timezone
    post.local_time = schedule.local_time
    for target in waiting:
        # Locked with the post: a dispatcher claiming it waits, then sees the new due time.
        target.scheduled_at = target.due_at = moment or target.scheduled_at
    if moment != previous_moment:
        post.revision += 1  # a new time needs a new approval
        approvals.restart(session, post, None)
        if post.state is not PostState.DRAFT:
            webhook_events.post_scheduled(session, post, [t.channel_id for t in post.targets])
    session.flush()
    return post


def duplicate(session: so.Session, post_id: int, author_id: int) -> Post | None:
    """A new draft with the same content, channels and overrides, and no time: nothing goes out twice by accident."""
    source = session.scalar(sa.select(Post).where(Post.id == post_id).options(so.selectinload(Post.targets)))
    if source is None:
        return None
    drafts = [
        {
            "channel_id": t.channel_id,
            "text_override": t.text_override,
            **(
                {"media_ids": [int(m["media_id"]) for m in t.media_override if m.get("media_id")]}
                if t.media_override is not None
                else {}
            ),
        }
        for t in source.targets
    ]
    copy = Post(
        author_id=author_id,
        text=source.text,
        media_urls=list(source.media_urls or []),
        media=list(source.media or []),
        thread=list(source.thread or []),
        content_warning=source.content_warning,
        visibility=source.visibility,
        language=source.language,
        tags=list(source.tags or []),
        notes=source.notes,
        first_comment=source.first_comment,
        state=PostState.DRAFT,
        timezone=source.timezone,
        draft_targets=drafts or list(source.draft_targets or []),
    )
    session.add(copy)
    session.flush()
    return copy


def cancel_post(session: so.Session, post_id: int) -> Post | None:
    """Cancel every target still waiting; what is in flight or done is left as it is."""
    post = locked_post(session, post_id)
    if post is None:
        return None
    waiting = [t for t in post.targets if t.state in (TargetState.SCHEDULED, TargetState.BLOCKED)]
    if not waiting:
        raise PostActionError("Nothing of this post is waiting to go out, so there is nothing to cancel.")
    for target in waiting:
        target.state = TargetState.CANCELED
    settle_post(post)
    return post


def delete_post(session: so.Session, post_id: int) -> Post | None:
    """Delete the post and its history here. Refused while a target is being published (its outcome is open).

    A post already live stays on the network: this removes our record of it only.
    """
    post = locked_post(session, post_id)
    if post is None:
        return None
    if any(t.state in (TargetState.QUEUED, TargetState.PUBLISHING) for t in post.targets):
        raise PostActionError("It is being published right now. Wait a moment, then delete it.")
    # Targets and attempts go with it by the foreign keys' ON DELETE CASCADE.
    session.execute(sa.delete(Post).where(Post.id == post_id), execution_options={"synchronize_session": False})
    session.expunge(post)
    return post


def overrides_of(post: Post | Document | None) -> dict[int, str]:
    """Each channel's own text, from the post's targets (or, for a draft, the channels it keeps)."""
    if post is None:
        return {}
    if post.targets:
        return {t.channel_id: t.text_override for t in post.targets if t.text_override}
    return {int(d["channel_id"]): str(d["text_override"]) for d in post.draft_targets if d.get("text_override")}


def _media_ids(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v) for v in values if v.isdigit())


def media_of(post: Post | Document | None) -> tuple[tuple[int, ...], dict[int, tuple[int, ...]]]:
    """The post's library media ids, and each channel's own where it has them."""
    if post is None:
        return (), {}
    base = _media_ids([str(m.get("media_id", "")) for m in post.media or ()])
    if post.targets:
        own = {
            t.channel_id: _media_ids([str(m.get("media_id", "")) for m in t.media_override])
            for t in post.targets
            if t.media_override is not None
        }
    else:
        own = {int(d["channel_id"]): tuple(d["media_ids"]) for d in post.draft_targets if "media_ids" in d}
    return base, own


def channel_ids_of(post: Post | Document) -> list[int]:
    return [t.channel_id for t in post.targets] or [int(d["channel_id"]) for d in post.draft_targets]


def extras_of(post: Post | Document) -> Extras:
    """What the post carries beyond its text, as `schedule_post` takes it back (for an edit of some fields)."""
    media_ids, media_overrides = media_of(post)
    return Extras(
        overrides=overrides_of(post),
        thread=tuple(str(part.get("text") or "") for part in post.thread or ()),
        tags=tuple(post.tags or ()),
        notes=post.notes or "",
        first_comment=post.first_comment or "",
        media_ids=media_ids,
        media_overrides=media_overrides,
        repeat=recurrence.Rule.from_json(post.recurrence) if post.recurrence else None,
    )


def tag_counts(session: so.Session) -> list[tuple[str, int]]:
    """Every tag the workspace's posts use, with how many posts use it, most used first."""
    used = sa.select(sa.func.unnest(Post.tags).label("tag")).subquery()
    return [
        (tag, count)
        for tag, count in session.execute(
            sa.select(used.c.tag, sa.func.count()).group_by(used.c.tag).order_by(sa.func.count().desc(), used.c.tag)
        )
    ]
