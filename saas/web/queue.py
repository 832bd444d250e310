"""Each channel's queue: its posting slots, what is lined up, shuffle, pause and resume."""

from __future__ import annotations

from datetime import time
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from saas import db, timezones
from saas.channels import service as channel_service
from saas.posts import queue
from saas.posts.queue import QueueError
from saas.posts.service import utcnow
from saas.security import require_role
from saas.web.forms import ConfirmForm
from tenants.models import Role

bp = Blueprint("queue", __name__, url_prefix="/queue")

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)


@bp.get("")
def index() -> Any:
    session = db.session()
    now = utcnow()
    channels = channel_service.channels(session)
    return render_template(
        "queue/index.html",
        channels=channels,
        slots={c.id: queue.slots(session, c.id) for c in channels},
        upcoming={c.id: queue.upcoming(session, c.id, now, limit=10) for c in channels},
        weekdays=queue.WEEKDAYS,
        zone=g.workspace.timezone,
        zones=timezones.timezones(),
        zone_of=queue.zone_of,
        can_edit=g.workspace.role in EDITORS,
    )


def _checked() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


def _back() -> Any:
    return redirect(url_for("workspace.queue.index"))


@bp.post("/<int:channel_id>/slots")
@require_role(*EDITORS)
def add_slot(channel_id: int) -> Any:
    _checked()
    if not queue.channel_exists(db.session(), channel_id):
        abort(404)
    weekday = request.form.get("weekday", "")
    try:
        at = time.fromisoformat(request.form.get("time", ""))
    except ValueError:
        flash("Enter a time like 09:30.", "error")
        return _back()
    try:
        slot = queue.add_slot(db.session(), channel_id, int(weekday) if weekday.isdigit() else -1, at)
    except LookupError:
        abort(404)
    except QueueError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back()
    db.session.commit()
    flash(f"Added a slot: {slot.label} ({g.workspace.timezone}).", "success")
    return _back()


@bp.post("/slots/<int:slot_id>/delete")
@require_role(*EDITORS)
def remove_slot(slot_id: int) -> Any:
    _checked()
    slot = queue.remove_slot(db.session(), slot_id)
    if slot is None:
        abort(404)
    db.session.commit()
    flash(f"Removed the slot {slot.label}. Posts already in it keep their time.", "success")
    return _back()


@bp.post("/<int:channel_id>/<action>")
@require_role(*EDITORS)
def channel_action(channel_id: int, action: str) -> Any:
    _checked()
    session = db.session()
    if action not in ("shuffle", "pause", "resume") or not queue.channel_exists(session, channel_id):
        abort(404)
    try:
        if action == "shuffle":
            zone = queue.zone_of(channel_service.channel(session, channel_id), g.workspace.timezone)
            moved = queue.shuffle(session, channel_id, zone, utcnow())
            message = f"Shuffled {moved} queued post{'s' if moved != 1 else ''}."
        elif action == "pause":
            held = queue.pause(session, channel_id, utcnow())
            message = f"Paused. {held} waiting post{'s are' if held != 1 else ' is'} held until you resume."
        elif action == "resume":
            released = queue.resume(session, channel_id, utcnow())
            message = (
                f"Resumed. {released} held post{'s' if released != 1 else ''} will go out; any that are late go now."
            )
        else:
            abort(404)
    except LookupError:
        abort(404)
    session.commit()
    flash(message, "success")
    return _back()


@bp.post("/<int:channel_id>/timezone")
@require_role(*EDITORS)
def set_timezone(channel_id: int) -> Any:
    _checked()
    zone = request.form.get("timezone", "").strip() or None
    try:
        channel = queue.set_timezone(db.session(), channel_id, zone)
    except LookupError:
        abort(404)
    except QueueError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back()
    db.session.commit()
    shown = channel.timezone or f"the workspace's zone ({g.workspace.timezone})"
    flash(f"@{channel.handle} now uses {shown} for its times and posting slots.", "success")
    return _back()
