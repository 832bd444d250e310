"""Approvals inside a workspace: the review queue, submit / decide / comment on a post, revoke a review link."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, Verdict
from saas.posts.models import Post
from saas.security import require_role
from saas.web.forms import ConfirmForm
from tenants.models import Role

bp = Blueprint("approval", __name__, url_prefix="/approvals")

PUBLISHERS_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)
VERDICTS = {"approve": Verdict.APPROVED, "request-changes": Verdict.CHANGES_REQUESTED}


def queue() -> Any:
    """The review queue: what waits for the current user, and what reviewers sent back."""
    session = db.session()
    return render_template(
        "approvals/queue.html",
        mine=approvals.waiting_for(session, current_user.id),
        sent_back=approvals.sent_back(session),
        mode=approvals.mode_of(session),
        now=approvals.utcnow(),
    )


def panel(post: Post) -> dict[str, Any]:
    """What the post page shows about approval: status, history, links, comments, and what the reader may do."""
    session = db.session()
    request_ = approvals.open_request(session, post.id)
    team = g.workspace.role in approvals.TEAM_ROLES
    mode = approvals.mode_of(session)
    return {
        "mode": mode,
        "open": request_,
        "history": approvals.history(session, post.id),
        "links": approvals.links(session, post.id) if team else [],
        "comments": approvals.comments(session, post.id, include_internal=team),
        "may_decide": approvals.may_decide(session, request_, current_user.id),
        "may_submit": team and mode is not ApprovalMode.NONE and request_ is None and post.state.value != "draft",
        "sees_internal": team,
        "now": approvals.utcnow(),
    }


def _back(post_id: int) -> Any:
    return redirect(url_for("workspace.posts.detail", post_id=post_id, _anchor="approval"))


def _checked() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


@bp.post("/posts/<int:post_id>/submit")
@require_role(*PUBLISHERS_ROLES)
def submit(post_id: int) -> Any:
    _checked()
    try:
        approvals.submit(db.session(), [post_id], current_user.id)
    except LookupError:
        abort(404)
    except approvals.ApprovalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(post_id)
    db.session.commit()
    flash("Sent for approval: the approvers have been emailed a link.", "success")
    return _back(post_id)


@bp.post("/posts/<int:post_id>/<action>")
def decide(post_id: int, action: str) -> Any:
    if action not in VERDICTS:
        abort(404)
    _checked()
    try:
        revision = int(request.form.get("revision", ""))
        approvals.decide(
            db.session(),
            post_id,
            user_id=current_user.id,
            verdict=VERDICTS[action],
            revision=revision,
            comment=request.form.get("comment", ""),
        )
    except (LookupError, ValueError) as exc:
        if isinstance(exc, approvals.ApprovalError):
            db.session.rollback()
            flash(str(exc), "error")
            return _back(post_id)
        abort(404)
    db.session.commit()
    flash("Approved." if action == "approve" else "Sent back with your comment.", "success")
    return _back(post_id)


@bp.post("/bulk")
def bulk() -> Any:
    """Approve, or ask for changes to, every ticked post of the queue with one comment."""
    _checked()
    action = request.form.get("action", "")
    if action not in VERDICTS:
        abort(400)
    ids = [int(v) for v in request.form.getlist("post_id") if v.isdigit()]
    if not ids:
        flash("Tick the posts first.", "error")
        return redirect(url_for("workspace.approvals"))
    revisions = {int(k.split("-", 1)[1]): v for k, v in request.form.items() if k.startswith("revision-")}
    done, problems = 0, []
    for post_id in ids:
        try:
            with db.session().begin_nested():  # one refusal does not undo the others
                approvals.decide(
                    db.session(),
                    post_id,
                    user_id=current_user.id,
                    verdict=VERDICTS[action],
                    revision=int(revisions.get(post_id, "0") or 0),
                    comment=request.form.get("comment", ""),
                )
            done += 1
        except approvals.ApprovalError as exc:
            problems.append(f"Post {post_id}: {exc}")
        except LookupError:
            abort(404)
    db.session.commit()
    if done:
        flash(
            f"{'Approved' if action == 'approve' else 'Sent back'}: {done} post{'' if done == 1 else 's'}.", "success"
        )
    for problem in problems:
        flash(problem, "error")
    return redirect(url_for("workspace.approvals"))


@bp.post("/posts/<int:post_id>/comments")
def comment(post_id: int) -> Any:
    _checked()
    team = g.workspace.role in approvals.TEAM_ROLES
    parent = request.form.get("parent_id", "")
    try:
        approvals.add_comment(
            db.session(),
            post_id,
            author=current_user._get_current_object(),
            body=request.form.get("body", ""),
            internal=team and request.form.get("internal") == "y",
            parent_id=int(parent) if parent.isdigit() else None,
        )
    except approvals.ApprovalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(post_id)
    except LookupError:
        abort(404)
    db.session.commit()
    flash("Comment added.", "success")
    return _back(post_id)


@bp.post("/links/<int:link_id>/revoke")
@require_role(*PUBLISHERS_ROLES)
def revoke_link(link_id: int) -> Any:
    _checked()
    link = approvals.revoke_link(db.session(), link_id)
    if link is None:
        abort(404)
    db.session.commit()
    flash("The review link no longer works.", "success")
    return _back(link.post_ids[0]) if link.post_ids else redirect(url_for("workspace.approvals"))
