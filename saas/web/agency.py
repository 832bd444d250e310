"""The agency side of a workspace: the clients console, staff assignments, ending an arrangement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from saas import db, entitlements, mail, timezones
from saas.agency import console
from saas.security import TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm
from tenants import agency
from tenants import service as tenant_service
from tenants.models import ClientMode, Tenant, TenantKind

bp = Blueprint("agency", __name__, url_prefix="/clients")


def _agency_only() -> None:
    if g.workspace.kind is not TenantKind.AGENCY:
        abort(404)


def _checked() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


def _client_posted_to(client_id: int) -> Tenant:
    """The managed client a form posted to: 404 for anything else (another agency's client, a direct workspace)."""
    _agency_only()
    _checked()
    client = agency.managed_client(db.session(), g.workspace.tenant_id, client_id)
    if client is None:
        abort(404)
    return client


@bp.get("")
def console_page() -> Any:
    """Every client the reader may work in, and what needs attention there; filter by client."""
    _agency_only()
    session = db.session()
    clients = console.visible_clients(session, current_user.id)
    chosen = request.args.get("client", "")
    shown = [c.id for c in clients if not chosen or str(c.id) == chosen]
    manages = g.workspace.role in TEAM_MANAGERS
    return render_template(
        "agency/console.html",
        clients=clients,
        names={c.id: c for c in clients},
        chosen=chosen,
        overview=console.overview(shown),
        manages=manages,
        staff=tenant_service.members(session) if manages else [],
        assigned=agency.assignments(session) if manages else {},
        zones=timezones.timezones(),
        modes=list(ClientMode),
    )


@bp.post("/new")
@require_role(*TEAM_MANAGERS)
def create() -> Any:
    _agency_only()
    session = db.session()
    zone = request.form.get("timezone", "") or g.workspace.timezone
    if not timezones.is_timezone(zone):
        flash(f"Unknown time zone {zone!r}.", "error")
        return redirect(url_for("workspace.agency.console_page"))
    try:
        mode = ClientMode(request.form.get("mode", ClientMode.MANAGED.value))
        client = agency.create_client(
            session, tenant_service.tenant_of(session), request.form.get("name", ""), zone, mode
        )
    except (agency.AgencyError, ValueError) as exc:
        db.session.rollback()
        flash(str(exc) if isinstance(exc, agency.AgencyError) else "Choose managed or self-serve.", "error")
        return redirect(url_for("workspace.agency.console_page"))
    session.commit()
    entitlements.sync_agency_quantity(g.workspace.tenant_id)  # the agency pays per managed client
    flash(f"Created {client.name}. Invite the client's team from its Team page.", "success")
    return redirect(url_for("workspace.agency.console_page"))


@bp.post("/<int:client_id>/staff")
@require_role(*TEAM_MANAGERS)
def assign_staff(client_id: int) -> Any:
    """Set who of the agency's staff works in this client: exactly the ticked people."""
    session = db.session()
    client = _client_posted_to(client_id)
    ticked = {int(v) for v in request.form.getlist("user_id") if v.isdigit()}
    current = agency.assignments(session).get(client.id, set())
    staff = {m.user_id for m in tenant_service.members(session)}
    if not ticked <= staff:
        abort(404)
    for user_id in ticked | current:
        agency.assign(session, client, user_id, current_user._get_current_object(), user_id in ticked)
    session.commit()
    flash(f"Saved who works on {client.name}.", "success")
    return redirect(url_for("workspace.agency.console_page"))


@bp.post("/<int:client_id>/mode")
@require_role(*TEAM_MANAGERS)
def set_mode(client_id: int) -> Any:
    session = db.session()
    client = _client_posted_to(client_id)
    try:
        client.client_mode = ClientMode(request.form.get("mode", ""))
    except ValueError:
        flash("Choose managed or self-serve.", "error")
        return redirect(url_for("workspace.agency.console_page"))
    session.commit()
    flash(f"{client.name} is now {client.client_mode.value.replace('_', '-')}.", "success")
    return redirect(url_for("workspace.agency.console_page"))


@bp.post("/<int:client_id>/end")
@require_role(*TEAM_MANAGERS)
def end(client_id: int) -> Any:
    """The agency stops managing the client. The client keeps everything and becomes a direct workspace."""
    client = _client_posted_to(client_id)
    name = client.name
    db.session.rollback()  # the arrangement is ended in its own (cross-tenant) transaction
    agency.end_management(client_id)
    g.audit_changed = True  # committed in its own session, so the audit hook is told here
    entitlements.sync_agency_quantity(g.workspace.tenant_id)
    flash(f"You no longer manage {name}. Its posts, channels and team stay with it.", "success")
    return redirect(url_for("workspace.agency.console_page"))


def end_from_client() -> Any:
    """The client's owner ends the arrangement from the client's own settings."""
    _checked()
    if g.workspace.kind is not TenantKind.CLIENT or g.workspace.acting_for_client or g.workspace.role.value != "owner":
        abort(404 if g.workspace.kind is not TenantKind.CLIENT else 403)
    db.session.rollback()
    agency_id = agency.end_management(g.workspace.tenant_id)
    g.audit_changed = True
    entitlements.sync_agency_quantity(agency_id)
    flash("The agency no longer manages this workspace. Everything in it stays with you.", "success")
    return redirect(url_for("workspace.settings"))


@bp.post("/invite")
@require_role(*TEAM_MANAGERS)
def invite_existing() -> Any:
    """Invite a business already on Multipost: its owner accepts from the email, choosing the workspace."""
    _agency_only()
    _checked()
    session = db.session()
    email = request.form.get("email", "")
    try:
        raw = agency.invite_direct_workspace(session, email, current_user._get_current_object(), agency_now())
    except agency.AgencyError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.agency.console_page"))
    address = email.strip().lower()
    mail.send(
        address,
        f"{g.workspace.name} would like to manage your Multipost workspace",
        "management_invitation",
        agency=g.workspace.name,
        inviter=current_user.name,
        link=mail.link("manage_invitations.accept", token=raw),
        days=agency.MANAGEMENT_INVITATION_LIFETIME.days,
    )
    session.commit()
    flash(f"Invitation sent to {address}. The workspace's owner accepts it from the email.", "success")
    return redirect(url_for("workspace.agency.console_page"))


def agency_now() -> datetime:
    return datetime.now(UTC)


invitations_bp = Blueprint("manage_invitations", __name__, url_prefix="/manage-invitations")


@invitations_bp.route("/<token>", methods=["GET", "POST"])
@login_required
def accept(token: str) -> Any:
    """The owner of a direct workspace accepts an agency's invitation to manage it."""
    try:
        offer = agency.offer_for_token(token, agency_now())
    except agency.AgencyError as exc:
        return render_template("review/problem.html", message=str(exc)), 404
    workspaces = agency.owned_direct_workspaces(current_user.id)
    error = None
    if request.method == "POST":
        _checked()
        chosen = request.form.get("workspace_id", "")
        if not chosen.isdigit() or int(chosen) not in {w.id for w in workspaces}:
            error = "Choose which of your workspaces the agency should manage."
        else:
            try:
                client = agency.accept_management(token, current_user._get_current_object(), int(chosen), agency_now())
            except agency.AgencyError as exc:
                error = str(exc)
            else:
                entitlements.sync_agency_quantity(offer.agency_id)
                flash(f"{offer.agency_name} now manages {client.name}. You keep everything in it.", "success")
                return redirect(url_for("workspace.settings", slug=client.slug))
    return render_template("agency/accept.html", offer=offer, workspaces=workspaces, error=error, token=token), (
        422 if error else 200
    )
