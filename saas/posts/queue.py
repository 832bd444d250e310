"""Posting slots: each channel's weekly times (weekday + local wall time) that "Add to queue" fills."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from saas import timezones
from saas.channels.models import Channel
from saas.db import Base
from saas.posts.models import PAUSED_REASON, Post, PostTarget, TargetState
from tenants.scoping import TenantScoped

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HORIZON_DAYS = 366  # how far ahead a free slot is looked for


class PostingSlot(TenantScoped, Base):
    __tablename__ = "posting_slots"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "channel_id", "weekday", "local_time"),
        sa.ForeignKeyConstraint(["tenant_id", "channel_id"], ["channels.tenant_id", "channels.id"], ondelete="CASCADE"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    channel_id: so.Mapped[int]
    weekday: so.Mapped[int] = so.mapped_column(sa.SmallInteger)  # 0 = Monday
    local_time: so.Mapped[time] = so.mapped_column(sa.Time)

    @property
    def label(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.local_time:%H:%M}"


class QueueError(ValueError):
    """A queue request that cannot be met; the message says why."""


def channel_exists(session: so.Session, channel_id: int) -> bool:
    return session.scalar(sa.select(Channel.id).where(Channel.id == channel_id)) is not None


def zone_of(channel: Channel, workspace_zone: str) -> str:
    """The zone a channel's times are entered and shown in: its own, else the workspace's."""
    return channel.timezone or workspace_zone


def set_timezone(session: so.Session, channel_id: int, zone: str | None) -> Channel:
    """Give the channel its own zone (None: follow the workspace). Posting slots keep their wall times."""
    if zone is not None and not timezones.is_timezone(zone):
        raise QueueError(f"Unknown time zone {zone!r}.")
    channel = session.scalar(sa.select(Channel).where(Channel.id == channel_id))
    if channel is None:
        raise LookupError(channel_id)
    channel.timezone = zone
    return channel


def slots(session: so.Session, channel_id: int) -> list[PostingSlot]:
    return list(
        session.scalars(
            sa.select(PostingSlot)
            .where(PostingSlot.channel_id == channel_id)
            .order_by(PostingSlot.weekday, PostingSlot.local_time)
        )
    )


def add_slot(session: so.Session, channel_id: int, weekday: int, at: time) -> PostingSlot:
    if not 0 <= weekday <= 6:
        raise QueueError("Choose a day of the week.")
    if not channel_exists(session, channel_id):
        raise LookupError(channel_id)
    exists = session.scalar(
        sa.select(PostingSlot.id).where(
            PostingSlot.channel_id == channel_id, PostingSlot.weekday == weekday, PostingSlot.local_time == at
        )
    )
    if exists:
        raise QueueError(f"There is already a slot on {WEEKDAYS[weekday]} at {at:%H:%M}.")
    slot = PostingSlot(channel_id=channel_id, weekday=weekday, local_time=at.replace(second=0, microsecond=0))
    session.add(slot)
    session.flush()
    return slot


def remove_slot(session: so.Session, slot_id: int) -> PostingSlot | None:
    slot = session.scalar(sa.select(PostingSlot).where(PostingSlot.id == slot_id))
    if slot is not None:
        session.delete(slot)
        session.flush()
    return slot


def _slot_times(slot_list: list[PostingSlot], zone: str, after: datetime) -> list[tuple[datetime, datetime]]:
    """(local wall time, UTC moment) of every slot occurrence after `after`, for a year, in time order.

    A slot that falls in a DST gap that day is skipped; a doubled hour takes its first occurrence.
    """
    start = timezones.to_local(after, zone).date()
    found = []
    for offset in range(HORIZON_DAYS):
        day = start + timedelta(days=offset)
        for slot in slot_list:
            if slot.weekday != day.weekday():
                continue
            local = datetime.combine(day, slot.local_time)
            try:
                moment = timezones.to_utc(local, zone, fold=0)
            except timezones.LocalTimeError:
                continue
            if moment > after:
                found.append((local, moment))
    return sorted(found, key=lambda pair: pair[1])


def taken_times(session: so.Session, channel_id: int, after: datetime) -> set[datetime]:
    return set(
        session.scalars(
            sa.select(PostTarget.scheduled_at).where(
                PostTarget.channel_id == channel_id,
                PostTarget.scheduled_at > after,
                PostTarget.state != TargetState.CANCELED,
            )
        )
    )


def next_free_slot(session: so.Session, channel_id: int, zone: str, after: datetime) -> tuple[datetime, datetime]:
    """The next slot of the channel with no post of it already at that moment: (local, UTC)."""
    slot_list = slots(session, channel_id)
    if not slot_list:
        raise QueueError("This channel has no posting slots yet: add some on its queue page.")
    taken = taken_times(session, channel_id, after)
    for local, moment in _slot_times(slot_list, zone, after):
        if moment not in taken:
            return local, moment
    raise QueueError("Every slot of the coming year is taken.")


def shuffle(session: so.Session, channel_id: int, zone: str, now: datetime, rng: random.Random | None = None) -> int:
    """Shuffle the queued posts of a channel among the slot times they occupy; returns how many moved.

    Only posts going to this channel alone, still waiting and sitting on a slot, are shuffled:
    moving a post shared with another channel would move it there too.
    """
    slot_moments = {moment for _local, moment in _slot_times(slots(session, channel_id), zone, now)}
    targets = list(
        session.scalars(
            sa.select(PostTarget)
            .where(
                PostTarget.channel_id == channel_id,
                PostTarget.state == TargetState.SCHEDULED,
                PostTarget.scheduled_at > now,
                PostTarget.attempt_count == 0,
            )
            .order_by(PostTarget.scheduled_at)
            .with_for_update()
        )
    )
    single = {
        post_id
        for post_id, n in session.execute(
            sa.select(PostTarget.post_id, sa.func.count())
            .where(PostTarget.post_id.in_([t.post_id for t in targets]))
            .group_by(PostTarget.post_id)
        )
        if n == 1
    }
    movable = [t for t in targets if t.scheduled_at in slot_moments and t.post_id in single]
    times = [t.scheduled_at for t in movable]
    (rng or random.Random()).shuffle(times)
    for target, moment in zip(movable, times, strict=True):
        target.scheduled_at = target.due_at = moment
        post = session.get(Post, target.post_id)
        assert post is not None
        post.scheduled_at = moment
        post.local_time = timezones.to_local(moment, zone).replace(tzinfo=None)
    session.flush()
    return len(movable)


def pause(session: so.Session, channel_id: int, now: datetime) -> int:
    """Hold the channel's waiting posts (blocked, with the reason) until it is resumed; returns how many."""
    channel = session.scalar(sa.select(Channel).where(Channel.id == channel_id).with_for_update())
    if channel is None:
        raise LookupError(channel_id)
    channel.paused_at = channel.paused_at or now
    result = session.execute(
        sa.update(PostTarget)
        .where(PostTarget.channel_id == channel_id, PostTarget.state == TargetState.SCHEDULED)
        .values(state=TargetState.BLOCKED, last_error=PAUSED_REASON, blocked_reason="paused")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def resume(session: so.Session, channel_id: int, now: datetime) -> int:
    """Release what the pause held; a post whose time passed while paused goes out now."""
    channel = session.scalar(sa.select(Channel).where(Channel.id == channel_id).with_for_update())
    if channel is None:
        raise LookupError(channel_id)
    channel.paused_at = None
    result = session.execute(
        sa.update(PostTarget)
        .where(
            PostTarget.channel_id == channel_id,
            PostTarget.state == TargetState.BLOCKED,
            PostTarget.blocked_reason == "paused",
        )
        .values(
            state=TargetState.SCHEDULED,
            last_error=None,
            blocked_reason=None,
            due_at=sa.func.greatest(PostTarget.scheduled_at, now),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def upcoming(session: so.Session, channel_id: int, now: datetime, limit: int = 50) -> list[PostTarget]:
    return list(
        session.scalars(
            sa.select(PostTarget)
            .where(PostTarget.channel_id == channel_id, PostTarget.scheduled_at > now)
            .where(PostTarget.state.in_([TargetState.SCHEDULED, TargetState.BLOCKED]))
            .options(so.joinedload(PostTarget.post))
            .order_by(PostTarget.scheduled_at)
            .limit(limit)
        )
    )
