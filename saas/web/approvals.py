"""Approvals inside a workspace: the review queue, submit / decide / comment on a post, revoke a review link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db, mail
from saas.approvals import service as approvals
from saas.approvals.models import ApprovalMode, StepRule, Verdict
from saas.posts import service as post_service
from saas.posts.models import Post, PostState
from saas.security import TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm, ReviewerForm
from tenants import agency
from tenants import service as tenant_service
from tenants.models import Role

bp = Blueprint("approval", __name__, url_prefix="/approvals")

PUBLISHERS_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)
WEEK = timedelta(days=7)
# Posts that can be sent for approval: not gone out, not already in review.
SUBMITTABLE = (PostState.DRAFT, PostState.SCHEDULED, PostState.CHANGES_REQUESTED, PostState.APPROVED)
VERDICTS = {"approve": Verdict.APPROVED, "request-changes": Verdict.CHANGES_REQUESTED}


def queue() -> Any:
    """The review queue: what waits for the current user, and what reviewers sent back."""
    session = db.session()
    now = approvals.utcnow()
    return render_template(
        "approvals/queue.html",
        mine=approvals.waiting_for(session, current_user.id),
        sent_back=approvals.sent_back(session),
        mode=approvals.mode_of(session),
        now=now,
        unsent=post_service.posts_by_id(session, approvals.unsubmitted_between(session, now, now + WEEK)),
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
        "comments": approvals.comments(session, post.id, include_internal=_sees_internal()),
        "may_decide": approvals.may_decide(session, request_, current_user.id),
        "may_submit": team and mode is not ApprovalMode.NONE and request_ is None and post.state in SUBMITTABLE,
        "sees_internal": _sees_internal(),
        "now": approvals.utcnow(),
    }


def _sees_internal() -> bool:
    return approvals.sees_internal(g.workspace.kind, g.workspace.role, g.workspace.acting_for_client)


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
        done = post_service.submit_for_approval(db.session(), [post_id], current_user.id)
    except LookupError:
        abort(404)
    except approvals.ApprovalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(post_id)
    db.session.commit()
    if done.left:
        flash(f"This draft cannot be sent for approval yet: {done.left[0][1]} Edit it first.", "error")
    else:
        flash("Sent for approval: the approvers have been emailed a link.", "success")
    return _back(post_id)


@bp.post("/submit-week")
@require_role(*PUBLISHERS_ROLES)
def submit_week() -> Any:
    _checked()
    try:
        done = post_service.submit_week(db.session(), current_user.id, days=WEEK.days)
    except approvals.ApprovalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.approvals"))
    db.session.commit()
    count = len(done.requests)
    if count:
        flash(f"Sent {count} post{'' if count == 1 else 's'} for approval in one email to each approver.", "success")
    for post, reason in done.left:
        flash(f"Not sent: the draft “{post.text[:60] or 'without text'}” — {reason}", "error")
    return redirect(url_for("workspace.approvals"))


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
    team = _sees_internal()
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


MAX_STEPS = 3
ROLE_CHOICES = (
    (approvals.AGENCY_STAFF, "The agency's people"),
    (Role.OWNER.value, "Owners"),
    (Role.ADMIN.value, "Admins"),
    (Role.EDITOR.value, "Editors"),
    (Role.REVIEWER.value, "Reviewers"),
)


def _posted_steps() -> list[approvals.Step]:
    steps = []
    for n in range(1, MAX_STEPS + 1):
        name = request.form.get(f"step{n}_name", "").strip()
        roles = tuple(r for r in request.form.getlist(f"step{n}_roles") if r in dict(ROLE_CHOICES))
        users = tuple(int(u) for u in request.form.getlist(f"step{n}_users") if u.isdigit())
        if not (name or roles or users):
            continue  # an empty row is no step
        rule = StepRule.ALL if request.form.get(f"step{n}_rule") == "all" else StepRule.ANY
        steps.append(approvals.Step(name or f"Step {n}", rule, roles, users))
    return steps


@bp.route("/policy", methods=["GET", "POST"])
@require_role(*TEAM_MANAGERS)
def policy() -> Any:
    """The workspace's approval policy: none, optional or required, and its steps in order."""
    session = db.session()
    people = _people()
    current = approvals.policy_of(session)
    mode, steps, error = (current.mode if current else ApprovalMode.NONE), (current.steps if current else []), None
    if request.method == "POST":
        _checked()
        try:
            mode = ApprovalMode(request.form.get("mode", ""))
        except ValueError:
            abort(400)
        posted = _posted_steps()
        steps = [s.as_json() for s in posted]
        try:
            if any(u not in people for s in posted for u in s.user_ids):
                raise approvals.ApprovalError("Choose approvers from the people who work in this workspace.")
            approvals.set_policy(session, mode, posted)
        except approvals.ApprovalError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            session.commit()
            flash("Approval policy saved. It applies to posts sent for approval from now on.", "success")
            return redirect(url_for("workspace.approval.policy"))
    return _policy_page(mode, steps, people, error, ReviewerForm(formdata=None))


def _people() -> dict[int, str]:
    """Who can be named as an approver: this workspace's members and the agency's people working in it."""
    people = {m.user_id: m.user.name for m in tenant_service.members(db.session())}
    people.update(agency.staff_for_client(g.workspace.tenant_id))
    return people


def _policy_page(
    mode: ApprovalMode, steps: list[dict[str, Any]], people: dict[int, str], error: str | None, reviewer: ReviewerForm
) -> Any:
    rows = steps + [{"name": "", "rule": "any", "roles": [], "user_ids": []}] * (MAX_STEPS - len(steps))
    page = render_template(
        "approvals/policy.html",
        mode=mode,
        steps=rows,
        people=people,
        roles=ROLE_CHOICES,
        error=error,
        reviewer=reviewer,
    )
    return page, (422 if error or reviewer.errors else 200)


@bp.post("/reviewers")
@require_role(*TEAM_MANAGERS)
def add_reviewer() -> Any:
    """Name a reviewer by email: a free seat, no invitation to accept, no password; they act from emailed links."""
    form = ReviewerForm()
    if form.validate_on_submit():
        try:
            membership, created = tenant_service.add_reviewer(
                db.session(), email=form.email.data or "", name=form.name.data or "", added_by=current_user
            )
        except tenant_service.MembershipError as exc:
            db.session.rollback()
            form.email.errors = [*form.email.errors, str(exc)]
        else:
            db.session.commit()
            user = membership.user
            mail.send(
                user.email,
                f"{g.workspace.name} added you as a reviewer on Multipost",
                "reviewer_added",
                name=user.name,
                workspace=g.workspace.name,
                added_by=current_user,
                new_account=created,
            )
            flash(f"Added {user.name} ({user.email}) as a reviewer. Name them in a step below.", "success")
            return redirect(url_for("workspace.approval.policy"))
    current = approvals.policy_of(db.session())
    mode, steps = (current.mode, current.steps) if current else (ApprovalMode.NONE, [])
    return _policy_page(mode, steps, _people(), None, form)
