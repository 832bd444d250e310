"""The public end of the calendar feed: /feeds/<token>.ics, for calendar apps (no login, the token is the key)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app

from saas.posts import ical
from saas.posts.service import utcnow
from tenants import service as tenant_service
from tenants import tenant_session

bp = Blueprint("feeds", __name__, url_prefix="/feeds")


@bp.get("/<token>.ics")
def calendar_feed(token: str) -> Any:
    tenant_id = ical.tenant_for_token(token)
    if tenant_id is None:
        abort(404)  # unknown and revoked tokens look the same
    with tenant_session(tenant_id) as session:
        tenant = tenant_service.tenant_of(session)
        link = f"{current_app.config['PUBLIC_BASE_URL']}/w/{tenant.slug}"
        body = ical.render(session, tenant.name, tenant.timezone, utcnow(), link)
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )
