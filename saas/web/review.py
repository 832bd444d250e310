"""/review/<token>: a reviewer approves or asks for changes from an emailed link, without logging in.

The link's grant names the workspace, the reviewer and exactly the posts it covers; any other post id
answers 404, as a workspace route does across tenants.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for

from saas import db, timezones
from saas.approvals import service as approvals
from saas.approvals.models import Verdict
from saas.posts import previews
from saas.posts.models import Post, PostTarget
from tenants import bind_tenant
from tenants.models import Tenant, User

bp = Blueprint("review", __name__, url_prefix="/review")


def _grant(token: str) -> approvals.LinkGrant:
    try:
        return approvals.grant_for_token(token)
    except approvals.LinkProblem as exc:
        abort(make_response(render_template("review/problem.html", message=str(exc)), 404))


@bp.get("/<token>")
def page(token: str) -> Any:
    grant = _grant(token)
    session = db.session()
    bind_tenant(session, grant.tenant_id)
    posts = list(
        session.scalars(
            sa.select(Post)
            .where(Post.id.in_(grant.post_ids))
            .options(so.selectinload(Post.targets).joinedload(PostTarget.channel))
            .order_by(Post.scheduled_at.nulls_last(), Post.id)
        )
    )
    requests = {p.id: approvals.open_request(session, p.id) for p in posts}
    # The form only where this reviewer decides the step under way (an earlier step's approver just watches).
    deciding = {p.id for p in posts if approvals.may_decide(session, requests[p.id], grant.user_id)}
    shared = {p.id: approvals.comments(session, p.id, include_internal=False) for p in posts}
    tenant = session.get(Tenant, grant.tenant_id)
    reviewer = session.get(User, grant.user_id)
    zone = reviewer.timezone if reviewer else "UTC"  # the reader is not logged in: the reviewer's own zone
    return render_template(
        "review/page.html",
        when={p.id: timezones.format_local(p.scheduled_at, zone) for p in posts},
        previews={p.id: [previews.preview(t) for t in p.targets] for p in posts},
        token=token,
        posts=posts,
        requests=requests,
        comments=shared,
        tenant=tenant,
        deciding=deciding,
    )


@bp.post("/<token>/posts/<int:post_id>")
def decide(token: str, post_id: int) -> Any:
    grant = _grant(token)
    if post_id not in grant.post_ids:
        abort(404)  # the link covers exactly its own posts
    session = db.session()
    bind_tenant(session, grant.tenant_id)
    action = request.form.get("action")
    verdict = {"approve": Verdict.APPROVED, "request_changes": Verdict.CHANGES_REQUESTED}.get(action or "")
    if verdict is None:
        abort(400)
    try:
        revision = int(request.form.get("revision", ""))
    except ValueError:
        abort(400)
    try:
        approvals.decide(
            session,
            post_id,
            user_id=grant.user_id,
            verdict=verdict,
            revision=revision,
            comment=request.form.get("comment", ""),
            via_link=True,
        )
    except LookupError:
        abort(404)
    except approvals.ApprovalError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("review.page", token=token, _anchor=f"post-{post_id}"))
    session.commit()
    done = (
        "Thank you: your approval is recorded." if verdict is Verdict.APPROVED else "Your request for changes was sent."
    )
    flash(done, "success")
    return redirect(url_for("review.page", token=token, _anchor=f"post-{post_id}"))
