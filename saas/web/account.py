"""The logged-in user's own things: profile, email, password, two-factor, sessions, workspaces."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask_login import current_user, login_required, logout_user

from saas import accounts, db, mail
from saas.identity import events, notices, sessions, twofactor
from saas.identity.events import EventKind
from saas.security import current_session
from saas.web.forms import ChangeEmailForm, ChangePasswordForm, ConfirmForm, ProfileForm, TwoFactorForm
from saas.web.reauth import recent_auth_required
from tenants import service as tenant_service

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
@login_required
def _require_login() -> None:
    return None


@bp.after_request
def _no_store(response: Any) -> Any:
    # Secrets (the 2FA set-up key, recovery codes) and session lists must not linger in caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/workspaces")
def workspaces() -> Any:
    return render_template("account/workspaces.html", workspaces=tenant_service.workspaces_of(current_user.id))


def _render(
    profile: ProfileForm | None = None,
    password: ChangePasswordForm | None = None,
    email: ChangeEmailForm | None = None,
    status: int = 200,
) -> Any:
    profile = profile or ProfileForm(obj=current_user)
    return render_template(
        "account/profile.html",
        profile=profile,
        password=password or ChangePasswordForm(formdata=None),
        email=email or ChangeEmailForm(formdata=None),
        end_sessions=ConfirmForm(formdata=None),
        two_factor_on=twofactor.is_enabled(db.session(), current_user.id),
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


@bp.post("/email")
@recent_auth_required()
def change_email() -> Any:
    form = ChangeEmailForm()
    if form.validate_on_submit():
        try:
            token = accounts.request_email_change(db.session(), current_user, form.email.data)
        except accounts.EmailRejected as exc:
            form.email.errors.append(str(exc))
        else:
            if token is None:
                mail.send(
                    form.email.data,
                    "You already have a Multipost account",
                    "email_change_taken",
                    user=current_user,
                    reset=mail.link("auth.reset_request"),
                )
            else:
                mail.send(
                    form.email.data,
                    "Confirm your new email address for Multipost",
                    "change_email",
                    user=current_user,
                    link=mail.link("auth.confirm_email_change", token=token),
                )
            flash(
                f"We sent a link to {form.email.data}. Your address changes when you open it (within 24 hours).",
                "info",
            )
            return redirect(url_for("account.profile"))
    return _render(email=form, status=422)


@bp.post("/password")
@recent_auth_required()
def change_password() -> Any:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        row = current_session()
        try:
            accounts.change_password(
                db.session(),
                current_user,
                form.current_password.data,
                form.password.data,
                keep_session=row.id if row else None,
            )
        except accounts.WrongPassword as exc:
            form.current_password.errors.append(str(exc))
        except accounts.PasswordRejected as exc:
            form.password.errors.append(str(exc))
        else:
            db.session.commit()
            flash("Your password is changed. Your other sessions have been logged out.", "success")
            return redirect(url_for("account.profile"))
    db.session.rollback()
    return _render(password=form, status=422)


# Sessions


@bp.get("/sessions")
def sessions_page() -> Any:
    row = current_session()
    this_id = row.id if row else None
    return render_template(
        "account/sessions.html",
        # This device first, then the others by when they were last seen.
        sessions=sorted(sessions.active(db.session(), current_user.id), key=lambda s: s.id != this_id),
        this_id=this_id,
        confirm=ConfirmForm(formdata=None),
        limits=sessions.timeouts(),
        activity=events.for_users(db.session(), [current_user.id], limit=20),
        label_of=events.label_of,
    )


@bp.post("/sessions/<int:session_id>/revoke")
def revoke_session(session_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not sessions.revoke(db.session(), current_user.id, session_id):
        abort(404)  # not theirs, or already ended: the same answer
    db.session.commit()
    row = current_session()
    if row is not None and row.id == session_id:
        logout_user()
        cookie_session.clear()
        flash("This session is logged out.", "info")
        return redirect(url_for("auth.login"))
    flash("That session is logged out.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.post("/sessions/revoke-others")
def revoke_other_sessions() -> Any:
    if ConfirmForm().validate_on_submit():
        row = current_session()
        ended = sessions.revoke_all(db.session(), current_user.id, keep=row.id if row else None)
        events.record(db.session(), EventKind.OTHER_SESSIONS_REVOKED, current_user.id)
        db.session.commit()
        flash(f"Logged out {ended} other session{'s' if ended != 1 else ''}.", "success")
    return redirect(url_for("account.sessions_page"))


@bp.post("/sessions/end")
def end_sessions() -> Any:
    if ConfirmForm().validate_on_submit():
        accounts.end_all_sessions(db.session(), current_user)
        db.session.commit()
        logout_user()
        cookie_session.clear()
        flash("You are logged out everywhere, including here.", "info")
    return redirect(url_for("auth.login", email=request.args.get("email", "")))


# Two-factor authentication


@bp.get("/two-factor")
def two_factor() -> Any:
    session = db.session()
    required_by = None
    if request.args.get("required"):
        workspace = tenant_service.find_workspace(current_user.id, request.args["required"][:63])
        required_by = workspace if workspace is not None and workspace.requires_two_factor else None
    return render_template(
        "account/two_factor.html",
        enabled=twofactor.is_enabled(session, current_user.id),
        codes_left=twofactor.recovery_codes_left(session, current_user.id),
        required_by=required_by,
        required_slug=required_by.slug if required_by else "",
        confirm=ConfirmForm(formdata=None),
    )


@bp.post("/two-factor/setup")
@recent_auth_required()
def start_two_factor() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        twofactor.begin_setup(db.session(), current_user.id)
    except twofactor.WrongCode as exc:
        flash(str(exc), "info")
        return redirect(url_for("account.two_factor"))
    db.session.commit()
    return redirect(url_for("account.confirm_two_factor", required=request.args.get("required", "")[:63] or None))


@bp.route("/two-factor/confirm", methods=["GET", "POST"])
@recent_auth_required()
def confirm_two_factor() -> Any:
    session = db.session()
    secret = twofactor.pending_secret(session, current_user.id)
    if secret is None:
        return redirect(url_for("account.two_factor"))
    form = TwoFactorForm()
    if form.validate_on_submit():
        try:
            codes = twofactor.confirm_setup(session, current_user.id, form.code.data or "")
        except twofactor.WrongCode as exc:
            session.rollback()
            form.code.errors.append(str(exc))
        else:
            session.commit()
            notices.send(current_user, "Two-factor authentication was turned on")
            return _show_recovery_codes(codes, continue_to=request.args.get("required"))
    uri = twofactor.provisioning_uri(secret, current_user.email)
    return render_template(
        "account/two_factor_setup.html", form=form, secret=secret, qr=twofactor.qr_code(uri)
    ), 200 if request.method == "GET" else 422


def _show_recovery_codes(codes: list[str], continue_to: str | None = None) -> Any:
    # Rendered straight away, never stored for a later page: this is the only time they are shown.
    workspace = tenant_service.find_workspace(current_user.id, continue_to[:63]) if continue_to else None
    return render_template("account/recovery_codes.html", codes=codes, continue_workspace=workspace)


@bp.post("/two-factor/recovery-codes")
@recent_auth_required()
def regenerate_recovery_codes() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        codes = twofactor.regenerate_recovery_codes(db.session(), current_user.id)
    except twofactor.WrongCode as exc:
        flash(str(exc), "info")
        return redirect(url_for("account.two_factor"))
    db.session.commit()
    return _show_recovery_codes(codes)


@bp.post("/two-factor/disable")
@recent_auth_required()
def disable_two_factor() -> Any:
    if ConfirmForm().validate_on_submit():
        twofactor.disable(db.session(), current_user.id)
        db.session.commit()
        notices.send(current_user, "Two-factor authentication was turned off")
        flash("Two-factor authentication is off. Your recovery codes no longer work.", "info")
    return redirect(url_for("account.two_factor"))
