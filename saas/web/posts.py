"""Compose, list and inspect posts; act on a target that needs a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from publishers import capabilities
from saas import db, timezones
from saas.approvals import service as approval_service
from saas.extensions import redis_client
from saas.media import service as media_service
from saas.posts import counting, recurrence, remote_delete, service
from saas.posts.models import Post, PostState, PostTarget, TargetState
from saas.posts.service import ComposeError, PostActionError, Schedule, TargetActionError
from saas.security import require_role
from saas.web import approvals, composer
from saas.web.forms import ConfirmForm, MarkPublishedForm, MoveForm, RescheduleForm
from tenants.models import Role

bp = Blueprint("posts", __name__, url_prefix="/posts")

PUBLISHERS_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)


def can_publish() -> bool:
    return g.workspace.role in PUBLISHERS_ROLES and not g.workspace.publishes_through_agency


@bp.before_request
def _managed_clients_publish_through_their_agency() -> None:
    # In a managed client the agency drafts and schedules; the client's people approve (saas.approvals).
    if (
        request.method == "POST"
        and request.endpoint != "workspace.posts.count"
        and g.workspace.publishes_through_agency
    ):
        abort(403)


TARGET_ACTIONS = {
    "cancel": (service.cancel_target, "Canceled: it will not be published to @{handle}."),
    "retry": (service.retry, "It will be tried again for @{handle} in a moment."),
    "check": (service.check_again, "Checking @{handle} again; the result appears here in a moment."),
    "publish-again": (service.publish_again, "It will be published again to @{handle} as a new post."),
}


@bp.get("")
def index() -> Any:
    return render_template("posts/index.html", posts=service.posts(db.session()), can_publish=can_publish())


@bp.route("/new", methods=["GET", "POST"])
@require_role(*PUBLISHERS_ROLES)
def new() -> Any:
    return _compose(None)


@bp.route("/<int:post_id>/edit", methods=["GET", "POST"])
@require_role(*PUBLISHERS_ROLES)
def edit(post_id: int) -> Any:
    post = service.post_with_history(db.session(), post_id)
    if post is None:
        abort(404)
    return _compose(post)


def _compose(post: Post | None) -> Any:
    form, channels = composer.compose_form(post)
    overrides = composer.overrides_of(post) if request.method == "GET" else composer.posted_overrides()
    media_ids, media_overrides = composer.media_of(post) if request.method == "GET" else composer.posted_media()
    zone = composer.entry_zone(channels, form.channels.data)
    error: ComposeError | None = None
    action = request.form.get("action")
    if form.validate_on_submit():
        save = service.save_draft if action == "draft" else service.schedule_post
        options = {"request_approval": False} if action == "approval" else {}
        try:
            saved = save(
                db.session(),
                author_id=current_user.id,
                text=form.text.data or "",
                channel_ids=form.channels.data or [],
                schedule=composer.schedule_from(form, channels),
                extras=composer.extras_from(form),  # ComposeError too: a repeat rule that cannot be used
                post_id=post.id if post else None,
                **options,
            )
            if action == "approval":
                approval_service.submit(db.session(), [saved.id], current_user.id)
        except approval_service.ApprovalError as exc:
            db.session.rollback()
            error = ComposeError("text", str(exc))
            form.text.errors = [*form.text.errors, str(exc)]
        except ComposeError as exc:
            db.session.rollback()
            error = exc
            if not exc.field.startswith("override-"):
                field = composer.form_field_for(form, exc.field)
                field.errors = [*field.errors, exc.message]
        else:
            db.session.commit()
            if action == "queue" and saved.scheduled_at:
                when = timezones.format_local(saved.scheduled_at, zone)
                flash(f"Added to the queue: the first channel's slot is {when}.", "success")
            elif saved.state is PostState.DRAFT:
                flash("Draft saved. Nothing goes out until you schedule it.", "success")
            elif saved.state is PostState.IN_REVIEW:
                flash("Sent for approval: it goes out at its time once approved.", "success")
            else:
                flash("Publishing now." if saved.scheduled_at and saved.local_time is None else "Scheduled.", "success")
            return redirect(url_for("workspace.posts.detail", post_id=saved.id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "posts/new.html",
        form=form,
        post=post,
        channels=channels,
        overrides=overrides,
        library=media_service.library(db.session()),
        media_ids=media_ids,
        media_overrides=media_overrides,
        error=error,
        zone=zone,
        networks={c.network: capabilities.for_network(c.network) for c in channels},
        approval_mode=approval_service.mode_of(db.session()),
    ), status


@bp.post("/count")
@require_role(*PUBLISHERS_ROLES)
def count() -> Any:
    """Each chosen channel's length by its network's own rule: the composer's live counter asks here."""
    body = request.get_json(silent=True) or {}
    text = str(body.get("text") or "")
    overrides = {int(k): str(v) for k, v in (body.get("overrides") or {}).items() if str(k).isdigit() and v}
    channel_ids = [int(i) for i in body.get("channels") or [] if str(i).isdigit()]
    return jsonify(counting.channel_counts(db.session(), channel_ids, text, overrides))


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
        can_publish=can_publish(),
        editable=all(t.state is TargetState.SCHEDULED and not t.attempt_count for t in post.targets),
        waiting=any(t.state in (TargetState.SCHEDULED, TargetState.BLOCKED) for t in post.targets),
        published=any(t.state is TargetState.PUBLISHED for t in post.targets),
        deletable=remote_delete.deletable(db.session(), post.id),
        format_local=timezones.format_local,
        repeat_rule=recurrence.Rule.from_json(post.recurrence).describe() if post.recurrence else "",
        approval=approvals.panel(post),
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


@bp.route("/<int:post_id>/move", methods=["GET", "POST"])
@require_role(*PUBLISHERS_ROLES)
def move(post_id: int) -> Any:
    """Reschedule to another wall time: the calendar's drag and drop posts here, and so does the move dialog."""
    post = service.post_with_history(db.session(), post_id)
    if post is None:
        abort(404)
    wants_json = request.accept_mimetypes.best == "application/json"
    form = MoveForm(formdata=None if request.method == "GET" else request.form)
    if request.method == "GET" and post.local_time is not None:
        form.date.data, form.time.data = post.local_time.date(), post.local_time.time()
    error: ComposeError | None = None
    if form.validate_on_submit():
        fold = int(form.fold.data) if form.fold.data in ("0", "1") else None
        local = datetime.combine(form.date.data, form.time.data)
        schedule = Schedule(
            publish_now=False, local_time=local, timezone=post.timezone or g.workspace.timezone, fold=fold
        )
        try:
            service.move_post(db.session(), post_id, schedule)
        except (ComposeError, PostActionError) as exc:
            db.session.rollback()
            error = exc if isinstance(exc, ComposeError) else ComposeError("when", str(exc))
            form.date.errors = [*form.date.errors, error.message]
        else:
            db.session.commit()
            message = f"Moved to {local:%-d %b %Y, %H:%M} {schedule.timezone}."
            if wants_json:
                return jsonify({"ok": True, "message": message})
            flash(message, "success")
            back = request.form.get("next", "")
            # Only a path on this site: never an open redirect.
            if not back.startswith("/") or back.startswith("//"):
                back = url_for("workspace.posts.detail", post_id=post_id)
            return redirect(back)
    if request.method == "POST" and wants_json:
        problems = [e for errors in form.errors.values() for e in errors]
        return jsonify({"ok": False, "message": " ".join(problems) or "Please try again."}), 422
    status = 422 if request.method == "POST" else 200
    return render_template("posts/move.html", post=post, form=form, error=error), status


POST_ACTIONS = {
    "stop-repeating": (recurrence.stop, "It no longer repeats. Occurrences already made stay as they are."),
    "cancel": (service.cancel_post, "Canceled: nothing more of this post goes out."),
    "delete": (service.delete_post, "Deleted. Anything already live stays on the networks."),
}


@bp.post("/<int:post_id>/<action>")
@require_role(*PUBLISHERS_ROLES)
def post_action(post_id: int, action: str) -> Any:
    if action not in (*POST_ACTIONS, "duplicate"):
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if action == "duplicate":
        copy = service.duplicate(db.session(), post_id, current_user.id)
        if copy is None:
            abort(404)
        db.session.commit()
        flash("Duplicated as a draft: choose a time and schedule it.", "success")
        return redirect(url_for("workspace.posts.edit", post_id=copy.id))
    act, done = POST_ACTIONS[action]
    remote = []
    if action == "delete" and request.form.get("delete_remote") == "y":
        remote = remote_delete.deletable(db.session(), post_id)
    try:
        post = act(db.session(), post_id)
    except (PostActionError, recurrence.RecurrenceError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.posts.detail", post_id=post_id))
    if post is None:
        abort(404)
    db.session.commit()
    if remote:
        remote_delete.enqueue(redis_client(), g.workspace.tenant_id, remote)
        done = "Deleted here; deleting it on " + ", ".join(f"@{r.handle}" for r in remote) + " now."
    flash(done, "success")
    if action == "delete":
        return redirect(url_for("workspace.calendar"))
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
