"""Tell people about events they must act on: once per event and person, in the app and by email."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import insert

from saas import mail
from saas.notifications.models import Notification
from tenants.models import Membership, Role, User

log = logging.getLogger(__name__)


def admins(session: so.Session) -> list[int]:
    return list(session.scalars(sa.select(Membership.user_id).where(Membership.role.in_([Role.OWNER, Role.ADMIN]))))


def notify(
    session: so.Session,
    *,
    tenant_id: int,
    user_ids: Iterable[int | None],
    event_key: str,
    title: str,
    body: str,
    link: str | None,
    email_link: str | None = None,
) -> list[int]:
    """Record the notification for each user who has not had this event yet; email them. Returns new ids.

    The unique (tenant, user, event_key) makes a repeated report of the same event a no-op,
    so a failing batch or a retried job can never send a storm. `email_link` is for the email only: a
    secret link (a review link) is sent, never stored in the in-app notification.
    """
    created = []
    for user_id in sorted({u for u in user_ids if u is not None}):
        row = session.execute(
            insert(Notification)
            .values(
                tenant_id=tenant_id, user_id=user_id, event_key=event_key[:200], title=title[:300], body=body, link=link
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "user_id", "event_key"])
            .returning(Notification.id)
        ).first()
        if row is not None:
            created.append(row[0])
    if created:
        emails = session.execute(
            sa.select(User.email, User.name)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.id.in_(created))
        ).all()
        for email, name in emails:
            try:
                mail.send(email, title, "notification", name=name, body=body, link=email_link or link)
            except OSError:
                # The in-app notification stands; a mail server outage must not undo the event.
                log.exception("could not email notification %r to user", event_key)
        session.execute(sa.update(Notification).where(Notification.id.in_(created)).values(emailed_at=sa.func.now()))
    return created


def sent_before(session: so.Session, user_id: int, event_key: str) -> bool:
    """Whether this person was already told of this event (in the session's workspace)."""
    found = session.scalar(
        sa.select(Notification.id).where(Notification.user_id == user_id, Notification.event_key == event_key[:200])
    )
    return found is not None


def unread_count(session: so.Session, user_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def recent(session: so.Session, user_id: int, limit: int = 50) -> list[Notification]:
    return list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc())
            .limit(limit)
        )
    )


def mark_all_read(session: so.Session, user_id: int) -> None:
    session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=sa.func.now())
    )
