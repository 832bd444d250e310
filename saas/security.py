"""Who is logged in, what they may do, and the headers every response carries."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, g
from flask import session as cookie_session
from flask_login import current_user, login_user, logout_user

from saas import db
from saas.extensions import login_manager
from saas.identity import events, sessions
from saas.identity.events import EventKind
from saas.identity.models import UserSession
from tenants.models import Role, User

F = TypeVar("F", bound=Callable[..., Any])

# No inline script or style anywhere (templates load /static files only), so an injected <script> in
# user text would not run even if escaping failed. The billing page widens form-action for Stripe.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    headers_by_default = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP 2
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if app.config["PUBLIC_BASE_URL"].startswith("https://"):
        headers_by_default.append(("Strict-Transport-Security", HSTS))

    @app.after_request
    def security_headers(response: Any) -> Any:
        # Each one unless the view set its own (the billing page widens the CSP's form-action for Stripe).
        present = {name.lower() for name in response.headers.keys()}
        response.headers.extend([(name, value) for name, value in headers_by_default if name.lower() not in present])
        return response


# The key in the signed cookie that names this browser's row in user_sessions (saas.identity.sessions).
SESSION_KEY = "sid"


@login_manager.user_loader
def load_user(cookie_id: str) -> User | None:
    """The user this browser is logged in as, if its server-side session is still alive.

    flask-login's own remember cookie is never set (remember-me is a long-lived session row), and a
    stray one cannot log anyone in: without a live session handle in the signed cookie, nobody is loaded.
    """
    user_id = cookie_id.partition(":")[0]
    handle = cookie_session.get(SESSION_KEY)
    if not user_id.isdigit() or not isinstance(handle, str):
        return None
    row = sessions.find_alive(db.session(), handle, int(user_id))
    user = db.session.get(User, int(user_id)) if row is not None else None
    if user is None:
        return None
    g.user_session = row
    return user


def start_session(user: User, *, remember: bool = False) -> None:
    """Log `user` in with a new session: a new handle, and nothing from before log-in carries over."""
    previous = current_session()
    if previous is not None:
        sessions.end(previous)  # logging in again in this browser replaces its session
    cookie_session.clear()
    handle = sessions.create(db.session(), user.id, remember=remember)
    events.record(db.session(), EventKind.LOGIN, user.id)
    db.session.commit()
    login_user(user)
    cookie_session[SESSION_KEY] = handle
    # Only a remembered session outlives the browser; the others end when it closes (and on the server).
    cookie_session.permanent = remember


def current_session() -> UserSession | None:
    """This browser's session row (None when nobody is logged in)."""
    return g.get("user_session") if current_user.is_authenticated else None


def end_session() -> None:
    """Log this browser out: its session row ends too, so a copy of the cookie is worthless."""
    row = current_session()
    if row is not None:
        sessions.end(row)
        events.record(db.session(), EventKind.LOGOUT, row.user_id)
        db.session.commit()
    logout_user()
    cookie_session.clear()


def require_role(*roles: Role) -> Callable[[F], F]:
    """Allow a workspace view only to members with one of `roles` (403 otherwise)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.workspace.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


TEAM_MANAGERS = (Role.OWNER, Role.ADMIN)
