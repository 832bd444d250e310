"""Sign up, email verification, log in and out, password reset.

None of these pages reveals whether an address has an account: sign up and
reset answer the same either way and tell the real owner by email instead.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask_login import current_user, login_required

from saas import accounts, db, mail, ratelimit
from saas.identity import events, notices, twofactor
from saas.identity.events import EventKind
from saas.security import end_session, start_session
from saas.web.forms import (
    ConfirmForm,
    LoginForm,
    ResetPasswordForm,
    ResetRequestForm,
    SignupForm,
    TwoFactorForm,
)
from tenants import service as tenant_service
from tenants.models import TokenPurpose, User

bp = Blueprint("auth", __name__)

# The signed-cookie key of a log-in waiting for its second factor (TWO_FACTOR_LOGIN_SECONDS to finish).
PENDING_LOGIN = "pending_login"


def _send_verification(user: User) -> None:
    token = accounts.issue_token(db.session(), user, TokenPurpose.VERIFY_EMAIL)
    mail.send(
        user.email,
        "Confirm your email for Multipost",
        "verify_email",
        user=user,
        link=mail.link("auth.verify", token=token),
    )


def _home_for(user: User) -> str:
    workspaces = tenant_service.workspaces_of(user.id)
    if len(workspaces) == 1:
        return url_for("workspace.calendar", slug=workspaces[0].slug)
    return url_for("account.workspaces")


def safe_next(target: str | None) -> str | None:
    # Only local paths: an absolute or scheme-relative URL would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.get("/")
def index() -> Any:
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    form = SignupForm()
    if form.validate_on_submit():
        ratelimit.hit("signup", account=None)
        try:
            result = accounts.sign_up(
                db.session(),
                email=form.email.data,
                name=form.name.data,
                password=form.password.data,
                business_name=form.business_name.data,
                timezone=form.timezone.data,
            )
        except accounts.PasswordRejected as exc:
            form.password.errors.append(str(exc))
        else:
            if result.created:
                _send_verification(result.user)
            else:
                mail.send(
                    result.user.email,
                    "You already have a Multipost account",
                    "account_exists",
                    user=result.user,
                    login=mail.link("auth.login"),
                    reset=mail.link("auth.reset_request"),
                )
            db.session.commit()
            return redirect(url_for("auth.check_email", email=form.email.data))
    return render_template("auth/signup.html", form=form), 200 if request.method == "GET" else 422


@bp.get("/signup/check-email")
def check_email() -> Any:
    return render_template("auth/check_email.html", email=request.args.get("email", "")[:254])


@bp.get("/verify/<token>")
def verify(token: str) -> Any:
    try:
        user = accounts.verify_email(db.session(), token)
    except accounts.TokenError as exc:
        db.session.rollback()
        return render_template("auth/token_problem.html", message=str(exc), retry=url_for("auth.login")), 400
    db.session.commit()
    flash(
        "Your email address is confirmed." + ("" if current_user.is_authenticated else " You can log in now."),
        "success",
    )
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(_home_for(user))
    return redirect(url_for("auth.login", email=user.email))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    if form.validate_on_submit():
        ratelimit.hit("login", account=form.email.data)
        session = db.session()
        user = accounts.authenticate(session, form.email.data, form.password.data)
        next_page = safe_next(request.args.get("next"))
        if user is None:
            known = accounts.user_by_email(session, form.email.data)
            events.record(session, EventKind.LOGIN_FAILED, known.id if known else None)
            session.commit()
            form.password.errors.append("Wrong email or password.")
        elif user.email_verified_at is None:
            # Only someone who knows the password learns the account is unconfirmed.
            _send_verification(user)
            session.commit()
            form.email.errors.append("Please confirm your email address first. We have sent you a new link.")
        elif twofactor.is_enabled(session, user.id):
            session.commit()
            # Half logged in: this names who is trying, for a few minutes, and grants nothing else.
            cookie_session.clear()
            cookie_session[PENDING_LOGIN] = {
                "user_id": user.id,
                "at": time.time(),
                "remember": bool(form.remember.data),
                "next": next_page,
            }
            return redirect(url_for("auth.two_factor"))
        else:
            session.commit()
            start_session(user, remember=bool(form.remember.data))
            return redirect(next_page or _home_for(user))
    status = 200 if request.method == "GET" else 422
    return render_template("auth/login.html", form=form), status


def _pending_login() -> dict[str, Any] | None:
    pending = cookie_session.get(PENDING_LOGIN)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int | float):
        return None
    if time.time() - pending["at"] > current_app.config["TWO_FACTOR_LOGIN_SECONDS"]:
        return None
    return pending


@bp.route("/login/two-factor", methods=["GET", "POST"])
def two_factor() -> Any:
    """The second step of logging in: nobody is logged in until the code is right."""
    pending = _pending_login()
    if pending is None:
        cookie_session.pop(PENDING_LOGIN, None)
        flash("Please log in again: the time to enter your code ran out.", "info")
        return redirect(url_for("auth.login"))
    form = TwoFactorForm()
    if form.validate_on_submit():
        user_id = pending["user_id"]
        ratelimit.hit("two_factor", account=f"user:{user_id}")
        session = db.session()
        try:
            method = twofactor.verify(session, user_id, form.code.data or "")
        except twofactor.WrongCode as exc:
            session.rollback()
            events.record(session, EventKind.TWO_FACTOR_FAILED, user_id)
            session.commit()
            form.code.errors.append(str(exc))
        else:
            session.commit()
            user = session.get(User, user_id)
            assert user is not None  # cascades would have deleted the credential with the user
            start_session(user, remember=bool(pending.get("remember")))
            if method == "recovery":
                notices.send(user, "A recovery code was used to log in")
                left = twofactor.recovery_codes_left(session, user_id)
                flash(
                    f"You logged in with a recovery code; {left} left. If you lost your authenticator, "
                    "set it up again under Profile and security.",
                    "warning",
                )
            return redirect(safe_next(pending.get("next")) or _home_for(user))
    status = 200 if request.method == "GET" else 422
    return render_template("auth/two_factor.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    if ConfirmForm().validate_on_submit():
        end_session()
        flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/email/confirm/<token>")
def confirm_email_change(token: str) -> Any:
    """The link mailed to a new address: it proves the address is theirs, then the account uses it."""
    try:
        user, old_email = accounts.change_email(db.session(), token)
    except accounts.TokenError as exc:
        db.session.rollback()
        return render_template("auth/token_problem.html", message=str(exc), retry=url_for("account.profile")), 400
    mail.send(old_email, "Your Multipost email address was changed", "email_changed", user=user, old_email=old_email)
    db.session.commit()
    flash(f"Your email address is now {user.email}.", "success")
    return redirect(url_for("account.profile") if current_user.is_authenticated else url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request() -> Any:
    form = ResetRequestForm()
    if form.validate_on_submit():
        ratelimit.hit("reset", account=form.email.data)
        user = accounts.user_by_email(db.session(), form.email.data)
        if user is not None:
            token = accounts.issue_token(db.session(), user, TokenPurpose.RESET_PASSWORD)
            mail.send(
                user.email,
                "Reset your Multipost password",
                "reset_password",
                user=user,
                link=mail.link("auth.reset_password", token=token),
            )
            db.session.commit()
        return render_template("auth/reset_sent.html", email=form.email.data)
    return render_template("auth/reset_request.html", form=form), 200 if request.method == "GET" else 422


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    try:
        user = accounts.peek_token(db.session(), token, TokenPurpose.RESET_PASSWORD)
    except accounts.TokenError as exc:
        return render_template("auth/token_problem.html", message=str(exc), retry=url_for("auth.reset_request")), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(db.session(), token, form.password.data)
        except accounts.PasswordRejected as exc:
            db.session.rollback()
            form.password.errors.append(str(exc))
        except accounts.TokenError as exc:  # used up by a parallel request a moment ago
            db.session.rollback()
            return render_template(
                "auth/token_problem.html", message=str(exc), retry=url_for("auth.reset_request")
            ), 400
        else:
            db.session.commit()
            if twofactor.is_enabled(db.session(), user.id):
                # The emailed link proves the inbox, not the second factor: log in with both.
                flash("Your password is changed. Log in with it and your authenticator code.", "success")
                return redirect(url_for("auth.login", email=user.email))
            start_session(user)
            flash("Your password is changed, and you are logged out everywhere else.", "success")
            return redirect(_home_for(user))
    return render_template("auth/reset_password.html", form=form, user=user), 200 if request.method == "GET" else 422
