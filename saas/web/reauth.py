"""Re-authentication: ask for the password (and second factor) again before a sensitive change.

Decorate a view with `@recent_auth_required()`; when this session's last password entry is older than
REAUTH_MAX_AGE (10 minutes by default), the person is sent to confirm it is them and then back:

- a GET comes back to the same address;
- a POST is never replayed: they come back to the page the form was on, to submit it again knowingly.

Apply it inside the login check (it assumes a logged-in user), e.g. API tokens:

    @bp.post("/tokens")
    @recent_auth_required()
    def create_token(): ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from saas import db, passwords, ratelimit
from saas.identity import events, sessions, twofactor
from saas.identity.events import EventKind
from saas.security import current_session
from saas.web.auth import safe_next
from saas.web.forms import ReauthForm

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("reauth", __name__)


def is_recent(max_age: timedelta | None = None) -> bool:
    """Whether this session entered the password within `max_age` (default REAUTH_MAX_AGE)."""
    row = current_session()
    limit = max_age if max_age is not None else current_app.config["REAUTH_MAX_AGE"]
    return row is not None and sessions.utcnow() - row.authenticated_at < limit


def recent_auth_required(max_age: timedelta | None = None) -> Callable[[F], F]:
    """Let the view run only if the password was entered recently in this session (see the module)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if is_recent(max_age):
                return view(*args, **kwargs)
            if request.method in ("GET", "HEAD"):
                back = request.full_path.rstrip("?")
            else:
                back = _form_page()
                flash("For your security, please confirm it is you. Then submit the form again.", "info")
            return redirect(url_for("reauth.confirm", next=back))

        return wrapped  # type: ignore[return-value]

    return decorator


def _form_page() -> str:
    """The page the submitted form was on (same site only), else the account page."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("account.profile")


@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
def confirm() -> Any:
    session = db.session()
    needs_code = twofactor.is_enabled(session, current_user.id)
    form = ReauthForm()
    back = safe_next(request.args.get("next")) or url_for("account.profile")
    if form.validate_on_submit():
        # A password guess here counts against the same limits as one on the log-in page.
        ratelimit.hit("login", account=current_user.email)
        if not passwords.verify_password(current_user.password_hash, form.password.data):
            form.password.errors.append("That is not your password.")
            events.record(session, EventKind.LOGIN_FAILED, current_user.id)
            session.commit()
        elif needs_code and not form.code.data:
            form.code.errors.append("Enter the code from your authenticator app, or a recovery code.")
        else:
            try:
                if needs_code:
                    ratelimit.hit("two_factor", account=f"user:{current_user.id}")
                    twofactor.verify(session, current_user.id, form.code.data)
            except twofactor.WrongCode as exc:
                session.rollback()
                form.code.errors.append(str(exc))
                events.record(session, EventKind.TWO_FACTOR_FAILED, current_user.id)
                session.commit()
            else:
                row = current_session()
                assert row is not None  # logged in
                sessions.mark_authenticated(row)
                events.record(session, EventKind.REAUTHENTICATED, current_user.id)
                session.commit()
                return redirect(back)
    status = 200 if request.method == "GET" else 422
    return render_template("auth/reauth.html", form=form, needs_code=needs_code, back=back), status
