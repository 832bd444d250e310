"""Compose, list and inspect posts; act on a target that needs a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db
from saas.channels import service as channel_service
from saas.channels.models import ChannelHealth
from saas.posts import service
from saas.posts.models import PostTarget
from saas.posts.service import ComposeError, Schedule, TargetActionError
from saas.security import require_role
from saas.web.forms import ComposeForm, ConfirmForm, MarkPublishedForm, RescheduleForm
from tenants.models import Role

bp = Blueprint("posts", __name__, url_prefix="/posts")

PUBLISHERS_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)

TARGET_ACTIONS = {
    "cancel": (service.cancel_target, "Canceled: it will not be published to @{handle}."),
    "retry": (service.retry, "It will be tried again for @{handle} in a moment."),
    "check": (service.check_again, "Checking @{handle} again; the result appears here in a moment."),
    "publish-again": (service.publish_again, "It will be published again to @{handle} as a new post."),
}


@bp.get("")
def index() -> Any:
    return render_template(
        "posts/index.html", posts=service.posts(db.session()), can_publish=g.workspace.role in PUBLISHERS_ROLES
    )


def _compose_form() -> ComposeForm:
    form = ComposeForm()
    usable = [c for c in channel_service.channels(db.session()) if c.health is ChannelHealth.OK]
    form.channels.choices = [(c.id, f"{c.display_name} (@{c.handle}, {c.network})") for c in usable]
    return form


@bp.route("/new", methods=["GET", "POST"])
@require_role(*PUBLISHERS_ROLES)
def new() -> Any:
    form = _compose_form()
    zone = g.workspace.timezone
    if form.validate_on_submit():
        local_time = None
        if not form.publish_now.data and form.date.data and form.time.data:
            local_time = datetime.combine(form.date.data, form.time.data)
        try:
            post = service.schedule_post(
                db.session(),
                author_id=current_user.id,
                text=form.text.data,
                channel_ids=form.channels.data,
                schedule=Schedule(publish_now=bool(form.publish_now.data), local_time=local_time, timezone=zone),
            )
        except ComposeError as exc:
            db.session.rollback()
            field = {"when": form.date, "channels": form.channels}.get(exc.field, form.text)
            field.errors = [*field.errors, exc.message]  # type: ignore[assignment]
        else:
            db.session.commit()
            flash("Publishing now." if form.publish_now.data else "Scheduled.", "success")
            return redirect(url_for("workspace.posts.detail", post_id=post.id))
    status = 422 if request.method == "POST" else 200
    return render_template("posts/new.html", form=form, zone=zone), status


@bp.get("/<int:post_id>")
def detail(post_id: int) -> Any:
    post = service.post_with_history(db.session(), post_id)
    if post is None:
        abort(404)
    return render_template(
        "posts/detail.html",
        post=post,
        confirm=ConfirmForm(formdata=None),
        mark_form=MarkPublishedForm(formdata=None),
        can_publish=g.workspace.role in PUBLISHERS_ROLES,
    )


@bp.post("/<int:post_id>/targets/<int:target_id>/<action>")
@require_role(*PUBLISHERS_ROLES)
def target_action(post_id: int, target_id: int, action: str) -> Any:
    if action not in TARGET_ACTIONS:
        abort(404)
    act, done = TARGET_ACTIONS[action]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        target = act(db.session(), post_id, target_id)
    except TargetActionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.posts.detail", post_id=post_id))
    if target is None:
        abort(404)
    handle = target.channel.handle
    db.session.commit()
    flash(done.format(handle=handle), "success")
    return redirect(url_for("workspace.posts.detail", post_id=post_id))


@bp.post("/<int:post_id>/targets/<int:target_id>/mark-published")
@require_role(*PUBLISHERS_ROLES)
def mark_published(post_id: int, target_id: int) -> Any:
    form = MarkPublishedForm()
    if not form.validate_on_submit():
        flash(" ".join(form.url.errors) or "Please submit the form again.", "error")
        return redirect(url_for("workspace.posts.detail", post_id=post_id))
    try:
        target = service.mark_published(db.session(), post_id, target_id, form.url.data)
    except TargetActionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.posts.detail", post_id=post_id))
    if target is None:
        abort(404)
    db.session.commit()
    flash("Marked as published.", "success")
    return redirect(url_for("workspace.posts.detail", post_id=post_id))


@bp.post("/<int:post_id>/targets/<int:target_id>/reschedule")
@require_role(*PUBLISHERS_ROLES)
def reschedule(post_id: int, target_id: int) -> Any:
    """A post held back (by billing) goes out at a new time a person picks: held posts never fire in a burst."""
    target = db.session.get(PostTarget, target_id)
    if target is None or target.post_id != post_id:
        abort(404)  # before reading the form: another workspace's ids are simply not there
    form = RescheduleForm()
    back = redirect(url_for("workspace.posts.detail", post_id=post_id))
    if not form.validate_on_submit():
        flash("Choose the new date and time.", "error")
        return back
    schedule = Schedule(
        publish_now=False, local_time=datetime.combine(form.date.data, form.time.data), timezone=g.workspace.timezone
    )
    try:
        moment = service.resolve_time(schedule, service.utcnow())
        service.reschedule(db.session(), post_id, target_id, moment)
    except (ComposeError, TargetActionError) as exc:
        db.session.rollback()
        flash(getattr(exc, "message", str(exc)), "error")
        return back
    handle = target.channel.handle
    db.session.commit()
    flash(f"Rescheduled for @{handle}.", "success")
    return back
