"""The workspace's calendar as an iCalendar feed behind a secret, revocable URL, for calendar apps to subscribe to.

Only the token's digest is stored: a database leak does not hand out feed URLs.
The feed shows what is scheduled and published, never notes or drafts without a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
import sqlalchemy as sa
import sqlalchemy.orm as so

from saas.db import Base, utc_now_default
from saas.posts import calendar
from tenants import system_session, tokens
from tenants.scoping import TenantScoped

PAST = timedelta(days=30)
AHEAD = timedelta(days=92)


class CalendarFeed(TenantScoped, Base):
    __tablename__ = "calendar_feeds"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), server_default=utc_now_default())
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(sa.DateTime(timezone=True))


def active(session: so.Session) -> CalendarFeed | None:
    return session.scalar(sa.select(CalendarFeed).where(CalendarFeed.revoked_at.is_(None)).order_by(CalendarFeed.id))


def create(session: so.Session, user_id: int, now: datetime) -> tuple[CalendarFeed, str]:
    """A new feed URL token; any earlier one stops working (one live link per workspace)."""
    revoke_all(session, now)
    raw, digest = tokens.new_token()
    feed = CalendarFeed(token_hash=digest, created_by=user_id)
    session.add(feed)
    session.flush()
    return feed, raw


def revoke(session: so.Session, feed_id: int, now: datetime) -> CalendarFeed | None:
    feed = session.scalar(sa.select(CalendarFeed).where(CalendarFeed.id == feed_id))
    if feed is not None and feed.revoked_at is None:
        feed.revoked_at = now
    return feed


def revoke_all(session: so.Session, now: datetime) -> None:
    session.execute(sa.update(CalendarFeed).where(CalendarFeed.revoked_at.is_(None)).values(revoked_at=now))


def tenant_for_token(raw: str) -> int | None:
    """The workspace a live feed token belongs to (the token is the only credential a calendar app has)."""
    with system_session() as session:
        return session.scalar(
            sa.select(CalendarFeed.tenant_id).where(
                CalendarFeed.token_hash == tokens.digest(raw), CalendarFeed.revoked_at.is_(None)
            )
        )


def render(session: so.Session, name: str, zone: str, now: datetime, link: str) -> bytes:
    """The feed: one event per post from a month ago to three months ahead, at its time, with its channels."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Multipost//Content calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{name} · Multipost")
    cal.add("x-wr-timezone", zone)
    today = now.date()
    entries = calendar.window(session, today - PAST, today + AHEAD, zone, max_days=(PAST + AHEAD).days)
    for entry in entries:
        if entry.scheduled_at is None:
            continue
        event = icalendar.Event()
        event.add("uid", f"post-{entry.post_id}@multipost")
        event.add("dtstamp", now)
        event.add("dtstart", entry.scheduled_at)
        event.add("dtend", entry.scheduled_at + timedelta(minutes=15))
        channels = ", ".join(f"@{h}" for h in entry.channels)
        event.add("summary", f"[{entry.state.replace('_', ' ')}] {entry.snippet[:60]}")
        event.add("description", f"{entry.snippet}\n\nChannels: {channels}\nState: {entry.state}")
        event.add("url", f"{link}/posts/{entry.post_id}")
        cal.add_component(event)
    return bytes(cal.to_ical())
