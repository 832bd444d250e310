"""Settings → API tokens: make one (its secret shown once) and revoke one. Owners and admins only.

Both changes go through this module's two views, so a re-authentication check can be put on them in one place.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db
from saas.api import tokens
from saas.api.models import Scope
from saas.security import TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm
from saas.web.reauth import recent_auth_required
from tenants.models import Tenant

bp = Blueprint("api_tokens", __name__, url_prefix="/settings/api-tokens")


def _agency() -> Tenant | None:
    """The agency, when its staff are here for a client: their tokens belong to the agency's workspace."""
    return db.session.get(Tenant, g.workspace.agency_id) if g.workspace.acting_for_client else None


def _render(secret: str | None = None, error: str | None = None, status: int = 200) -> Any:
    return render_template(
        "workspace/api_tokens.html",
        agency=_agency(),
        tokens=tokens.listed(db.session()),
        scopes=list(Scope),
        secret=secret,
        error=error,
        name=request.form.get("name", "") if error else "",
    ), status


@bp.get("")
@require_role(*TEAM_MANAGERS)
def index() -> Any:
    return _render()


@bp.post("")
@require_role(*TEAM_MANAGERS)
@recent_auth_required()
def create() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    agency = _agency()
    if agency is not None:
        return _render(error=f"Make the token in {agency.name}'s own settings: it reaches this client from there.",
                       status=422)  # fmt: skip
    try:
        token, secret = tokens.create(
            db.session(),
            name=request.form.get("name", ""),
            scopes=request.form.getlist("scopes"),
            user_id=current_user.id,
            created_by_id=current_user.id,
        )
    except tokens.TokenError as exc:
        db.session.rollback()
        return _render(error=str(exc), status=422)
    db.session.commit()
    # Rendered, not redirected: the secret exists only in this response and is never stored.
    return _render(secret=secret, status=201)


@bp.post("/<int:token_id>/revoke")
@require_role(*TEAM_MANAGERS)
@recent_auth_required()
def revoke(token_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    token = tokens.revoke(db.session(), token_id)
    if token is None:
        abort(404)
    db.session.commit()
    flash(f"The token “{token.name}” no longer works.", "success")
    return redirect(url_for("workspace.api_tokens.index"))
