"""Accepting an emailed invitation: as a logged-in user, or by creating an account."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from saas import accounts, audit, db
from saas.security import start_session
from saas.web.forms import AcceptInvitationForm, ConfirmForm
from tenants import service as tenant_service
from tenants.service import InvitationView, MembershipError

bp = Blueprint("invitations", __name__, url_prefix="/invitations")

PROBLEMS = {
    "accepted": "This invitation has already been used. If it was you, just log in.",
    "revoked": "This invitation was withdrawn. Ask the person who invited you for a new one.",
    "expired": "This invitation has expired. Ask the person who invited you for a new one.",
}


def _problem(message: str) -> Any:
    return render_template("auth/token_problem.html", message=message, retry=url_for("auth.login")), 400


@bp.route("/<token>", methods=["GET", "POST"])
def accept(token: str) -> Any:
    invitation = tenant_service.invitation_by_token(token)
    if invitation is None:
        return _problem("This invitation link is not valid. Check that you copied all of it.")
    if invitation.state != "open":
        return _problem(PROBLEMS[invitation.state])
    if current_user.is_authenticated:
        return _accept_as_current_user(token, invitation)
    if accounts.user_by_email(db.session(), invitation.email) is not None:
        return render_template(
            "invitations/login_first.html",
            invitation=invitation,
            login=url_for("auth.login", email=invitation.email, next=request.path),
        )
    return _accept_with_new_account(token, invitation)


def _accept_as_current_user(token: str, invitation: InvitationView) -> Any:
    form = ConfirmForm()
    if current_user.email != invitation.email:
        return render_template("invitations/wrong_account.html", invitation=invitation, logout=ConfirmForm()), 403
    if form.validate_on_submit():
        return _finish(token, current_user)
    return render_template("invitations/accept.html", invitation=invitation, form=form)


def _accept_with_new_account(token: str, invitation: InvitationView) -> Any:
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            # The link arrived at this address, which proves it is theirs.
            user = accounts.create_user(
                db.session(),
                email=invitation.email,
                name=form.name.data,
                password=form.password.data,
                verified=True,
            )
        except accounts.PasswordRejected as exc:
            db.session.rollback()
            form.password.errors.append(str(exc))
        else:
            return _finish(token, user)
    status = 200 if request.method == "GET" else 422
    return render_template("invitations/new_account.html", invitation=invitation, form=form), status


def _finish(token: str, user: Any) -> Any:
    try:
        tenant_service.accept_invitation(db.session(), token, user)
    except MembershipError as exc:  # e.g. a second click that lost the race
        db.session.rollback()
        return _problem(str(exc))
    tenant = tenant_service.tenant_of(db.session())
    audit.record_event(
        db.session(),
        tenant.id,
        actor_id=user.id,
        actor_name=user.name,
        action="Joined the workspace",
        kind="members",
        detail=f"{user.name} ({user.email}) accepted an invitation",
        path=request.path,
    )
    db.session.commit()
    if not current_user.is_authenticated:
        start_session(user)
    flash(f"Welcome to {tenant.name}.", "success")
    return redirect(url_for("workspace.calendar", slug=tenant.slug))
