"""The content calendar: month, week and list views of one window, filtered, in the workspace's time zone."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db, timezones
from saas.channels import service as channel_service
from saas.posts import calendar, ical, queue
from saas.posts.calendar import Filters
from saas.security import require_role
from saas.web.forms import ConfirmForm
from tenants import service as tenant_service
from tenants.models import Role

VIEWS = ("month", "week", "list")
FEED_MANAGERS = (Role.OWNER, Role.ADMIN, Role.EDITOR)
# A month cell shows this many posts, then "+ N more" (the list view of that day): more is unreadable there.
PER_DAY = 8


def _date_arg(name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return default


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def filters_from_request() -> Filters:
    state = request.args.get("state") or None
    return Filters(
        channel_id=_int_arg("channel"),
        state=state if state in calendar.DISPLAY_STATES else None,
        tag=(request.args.get("tag") or "").strip() or None,
        author_id=_int_arg("author"),
    )


def _today(zone: str) -> date:
    return timezones.to_local(datetime.now(UTC), zone).date()


def window_of(view: str, zone: str) -> tuple[date, date, date]:
    """(anchor, first day, day after the last) of the visible window."""
    today = _today(zone)
    anchor = _date_arg("date", today)
    if view == "month":
        weeks = calendar.month_grid(anchor)
        return anchor, weeks[0][0], weeks[-1][-1] + timedelta(days=1)
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return anchor, start, start + timedelta(days=7)
    start = _date_arg("from", anchor)
    end = _date_arg("to", start + timedelta(days=30))
    return anchor, start, max(end, start + timedelta(days=1))


def zone_for(filters: Filters) -> str:
    """The workspace's zone, or, filtered to one channel with its own zone, that channel's."""
    if filters.channel_id is not None:
        with contextlib.suppress(LookupError):
            return queue.zone_of(channel_service.channel(db.session(), filters.channel_id), g.workspace.timezone)
    return str(g.workspace.timezone)


def page() -> Any:
    filters = filters_from_request()
    zone = zone_for(filters)
    view = request.args.get("view", "month")
    view = view if view in VIEWS else "month"
    anchor, start, end = window_of(view, zone)
    session = db.session()
    entries = calendar.window(session, start, end, zone, filters)
    by_day: dict[date, list[calendar.Entry]] = {}
    for entry in entries:
        if entry.local is not None:
            by_day.setdefault(entry.local.date(), []).append(entry)
    if view == "month":
        first = anchor.replace(day=1)
        previous, following = first - timedelta(days=1), first + timedelta(days=32)
        weeks = calendar.month_grid(anchor)
    else:
        step = timedelta(days=7) if view == "week" else (end - start)
        previous, following = anchor - step, anchor + step
        weeks = [[start + timedelta(days=i) for i in range(7)]] if view == "week" else []
    members = tenant_service.members(session)
    return render_template(
        "calendar/index.html",
        view=view,
        zone=zone,
        anchor=anchor,
        start=start,
        end=end,
        last=end - timedelta(days=1),
        weeks=weeks,
        by_day=by_day,
        entries=entries,
        drafts=calendar.unscheduled_drafts(session, filters),
        previous=previous,
        following=following,
        today=_today(zone),
        filters=filters,
        channels=channel_service.channels(session),
        authors={m.user_id: m.user.name for m in members},
        states=calendar.DISPLAY_STATES,
        confirm=ConfirmForm(formdata=None),
        feed=ical.active(session),
        posts_url=url_for("workspace.posts.index"),
        per_day=PER_DAY,
        one_day=timedelta(days=1),
        next_query="?" + urlencode({"next": request.full_path}),
        can_manage_feed=g.workspace.role in FEED_MANAGERS,
    )


def events() -> Any:
    """The list API: the window's posts as JSON (the calendar's data without the page)."""
    filters = filters_from_request()
    zone = zone_for(filters)
    _anchor, start, end = window_of("list", zone)
    entries = calendar.window(db.session(), start, end, zone, filters)
    return jsonify(
        {
            "timezone": zone,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "posts": [
                {
                    "id": e.post_id,
                    "text": e.snippet,
                    "state": e.state,
                    "scheduled_at": e.scheduled_at.isoformat() if e.scheduled_at else None,
                    "local_time": e.local.strftime("%Y-%m-%dT%H:%M") if e.local else None,
                    "channels": list(e.channels),
                    "tags": list(e.tags),
                }
                for e in entries
            ],
        }
    )


@require_role(*FEED_MANAGERS)
def create_feed() -> Any:
    """A new subscription link (the old one stops working); the link is shown once, then only its existence."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    _feed, raw = ical.create(db.session(), current_user.id, datetime.now(UTC))
    db.session.commit()
    url = url_for("feeds.calendar_feed", token=raw, _external=True)
    flash(f"Subscription link (copy it now, it is shown only once): {url}", "success")
    return redirect(url_for("workspace.calendar"))


@require_role(*FEED_MANAGERS)
def revoke_feed(feed_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    feed = ical.revoke(db.session(), feed_id, datetime.now(UTC))
    if feed is None:
        abort(404)
    db.session.commit()
    flash("The subscription link no longer works. Calendar apps subscribed to it stop updating.", "success")
    return redirect(url_for("workspace.calendar"))
