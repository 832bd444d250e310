"""Everything under /w/<slug>/: one tenant's workspace.

Entering a workspace resolves the user's membership (a cross-tenant lookup,
so it uses the system scope), answers 404 to anyone who is not a member, and
binds the request's database session to that tenant for the rest of the request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import audit, db, mail
from saas.identity import twofactor
from saas.notifications.service import notify
from saas.security import TEAM_MANAGERS
from saas.web.forms import WorkspaceSettingsForm
from tenants import bind_tenant
from tenants import service as tenant_service
from tenants.models import Role, Tenant

bp = Blueprint("workspace", __name__, url_prefix="/w/<slug>")

# Pages whose capability arrives with a later part of the product: they show
# what will live there instead of a blank page.
COMING_PAGES: dict[str, tuple[str, str, str]] = {}


@bp.url_value_preprocessor
def _pop_slug(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.workspace_slug = (values or {}).pop("slug", None)


@bp.url_defaults
def _add_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "slug" not in values and getattr(g, "workspace", None) is not None:
        values["slug"] = g.workspace.slug


@bp.before_request
def _enter_workspace() -> Any:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    workspace = tenant_service.find_workspace(current_user.id, g.workspace_slug)
    if workspace is None:
        abort(404)  # not 403: never confirm that another tenant's workspace exists
    if workspace.requires_two_factor and not twofactor.is_enabled(db.session(), current_user.id):
        # Only this workspace (or this agency's clients) asks it; their other workspaces stay open.
        return redirect(url_for("account.two_factor", required=workspace.slug))
    bind_tenant(db.session(), workspace.tenant_id)
    g.workspace = workspace
    return None


@bp.after_request
def _audit_change(response: Any) -> Any:
    """Write the change this request committed to the workspace's audit log (saas.audit)."""
    workspace = getattr(g, "workspace", None)
    if workspace is not None and g.pop("audit_changed", False):
        audit.record(db.session(), workspace, current_user.id, current_user.name, request.endpoint, request.path)
        db.session.commit()
        g.pop("audit_changed", None)
    return response


@bp.get("/")
def home() -> Any:
    return redirect(url_for("workspace.calendar"))


def _coming_page(page: str) -> Any:
    title, purpose, empty = COMING_PAGES[page]
    return render_template("workspace/coming.html", page=page, title=title, purpose=purpose, empty=empty)


for _page in COMING_PAGES:
    bp.add_url_rule(f"/{_page}", _page, lambda _page=_page: _coming_page(_page), methods=["GET"])


def _tell_members_two_factor_is_required(tenant: Tenant) -> None:
    """Members without two-factor learn it now, by email and in the app, not at the door next time."""
    session = db.session()
    members = [m.user_id for m in tenant_service.members(session)]
    notify(
        session,
        tenant_id=tenant.id,
        user_ids=twofactor.without_it(session, members),
        event_key=f"two-factor-required:{datetime.now(UTC):%Y%m%dT%H%M%S}",
        title=f"{tenant.name} now requires two-factor authentication",
        body=(
            f"{current_user.name} turned on a requirement: to open {tenant.name} you need two-factor "
            "authentication (a code from an authenticator app when you log in). Set it up now, or you will be "
            "asked to the next time you open the workspace."
        ),
        link=mail.link("account.two_factor"),
    )


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Any:
    tenant = tenant_service.tenant_of(db.session())
    form = WorkspaceSettingsForm(obj=tenant)
    can_edit = g.workspace.role in TEAM_MANAGERS
    if request.method == "POST":
        if not can_edit:
            abort(403)
        if form.validate_on_submit():
            if form.require_two_factor.data and not twofactor.is_enabled(db.session(), current_user.id):
                # Otherwise the first person sent to set it up would be the one who asked for it.
                form.require_two_factor.errors.append(
                    "Turn on two-factor authentication for your own account first (Profile and security)."
                )
            else:
                newly_required = bool(form.require_two_factor.data) and not tenant.require_two_factor
                tenant.name = form.name.data
                tenant.timezone = form.timezone.data
                tenant.require_two_factor = bool(form.require_two_factor.data)
                if newly_required:
                    _tell_members_two_factor_is_required(tenant)
                db.session.commit()
                flash("Workspace settings saved.", "success")
                return redirect(url_for("workspace.settings"))
    status = 422 if request.method == "POST" else 200
    managing = db.session.get(Tenant, tenant.managed_by_id) if tenant.managed_by_id else None
    return render_template(
        "workspace/settings.html",
        form=form,
        can_edit=can_edit,
        tenant=tenant,
        managing=managing,
        may_end=managing is not None and g.workspace.role is Role.OWNER and not g.workspace.acting_for_client,
    ), status


# Sections of the workspace, nested so they share its slug handling and tenant binding.
from saas.web import (  # noqa: E402
    agency,
    api_tokens,
    approvals,
    audit_log,
    billing,
    bulk,
    calendar,
    channels,
    media,
    notifications,
    posts,
    queue,
    team,
    webhooks,
)

bp.add_url_rule("/approvals", "approvals", approvals.queue, methods=["GET"])
bp.add_url_rule("/audit", "audit", audit_log.page, methods=["GET"])
bp.add_url_rule("/audit.csv", "audit_export", audit_log.export, methods=["GET"])
bp.add_url_rule("/settings/end-agency", "end_agency", agency.end_from_client, methods=["POST"])
bp.add_url_rule("/calendar", "calendar", calendar.page, methods=["GET"])
bp.add_url_rule("/calendar/events", "calendar_events", calendar.events, methods=["GET"])
bp.add_url_rule("/calendar/export.csv", "calendar_export", bulk.export, methods=["GET"])
bp.add_url_rule("/calendar/feed", "calendar_feed_create", calendar.create_feed, methods=["POST"])
bp.add_url_rule("/calendar/feed/<int:feed_id>/revoke", "calendar_feed_revoke", calendar.revoke_feed, methods=["POST"])

for _section in (
    team,
    posts,
    channels,
    notifications,
    billing,
    media,
    queue,
    bulk,
    approvals,
    agency,
    api_tokens,
    webhooks,
):
    bp.register_blueprint(_section.bp)
