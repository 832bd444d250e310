"""The logged-in user's own things: profile, password, sessions, workspaces."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from saas import accounts, db
from saas.security import start_session
from saas.web.forms import ChangePasswordForm, ConfirmForm, ProfileForm
from tenants import service as tenant_service

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
@login_required
def _require_login() -> None:
    return None


@bp.get("/workspaces")
def workspaces() -> Any:
    return render_template("account/workspaces.html", workspaces=tenant_service.workspaces_of(current_user.id))


def _render(profile: ProfileForm | None = None, password: ChangePasswordForm | None = None, status: int = 200) -> Any:
    profile = profile or ProfileForm(obj=current_user)
    return render_template(
        "account/profile.html",
        profile=profile,
        password=password or ChangePasswordForm(formdata=None),
        end_sessions=ConfirmForm(formdata=None),
    ), status


@bp.get("")
def profile() -> Any:
    return _render()


@bp.post("")
def update_profile() -> Any:
    form = ProfileForm()
    if not form.validate_on_submit():
        return _render(profile=form, status=422)
    accounts.update_profile(current_user, name=form.name.data, timezone=form.timezone.data)
    db.session.commit()
    flash("Your profile is saved.", "success")
    return redirect(url_for("account.profile"))


@bp.post("/password")
def change_password() -> Any:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current_password.data, form.password.data)
        except accounts.WrongPassword as exc:
            form.current_password.errors.append(str(exc))
        except accounts.PasswordRejected as exc:
            form.password.errors.append(str(exc))
        else:
            db.session.commit()
            start_session(current_user)  # this session stays; every other one has ended
            flash("Your password is changed. Your other sessions have been logged out.", "success")
            return redirect(url_for("account.profile"))
    db.session.rollback()
    return _render(password=form, status=422)


@bp.post("/sessions/end")
def end_sessions() -> Any:
    if ConfirmForm().validate_on_submit():
        accounts.end_all_sessions(current_user)
        db.session.commit()
        flash("You are logged out everywhere, including here.", "info")
    return redirect(url_for("auth.login", email=request.args.get("email", "")))
