"""The workspace's team: members, their roles, and invitations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user

from billing.lifecycle import Action
from saas import audit, db, entitlements, mail
from saas.security import TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm, InviteForm, RoleForm
from tenants import service as tenant_service
from tenants.models import Membership, Role
from tenants.service import MembershipError

bp = Blueprint("team", __name__, url_prefix="/team")


def _render(invite: InviteForm | None = None, status: int = 200) -> Any:
    session = db.session()
    return render_template(
        "team/index.html",
        members=tenant_service.members(session),
        invitations=tenant_service.open_invitations(session),
        invite=invite or InviteForm(formdata=None),
        role_form=RoleForm,
        can_manage=g.workspace.role in TEAM_MANAGERS,
        now=tenant_service.utcnow(),
    ), status


@bp.get("")
def index() -> Any:
    return _render()


@bp.post("/invitations")
@require_role(*TEAM_MANAGERS)
def invite() -> Any:
    form = InviteForm()
    if not form.validate_on_submit():
        return _render(invite=form, status=422)
    try:
        if entitlements.takes_seat(form.role.data):
            entitlements.require(db.session(), g.workspace.tenant_id, Action.ADD_SEAT)
        invitation, token = tenant_service.invite(
            db.session(), email=form.email.data, role=Role(form.role.data), invited_by=current_user
        )
    except (MembershipError, entitlements.LimitReached) as exc:
        db.session.rollback()
        form.email.errors.append(str(exc))
        return _render(invite=form, status=422)
    mail.send(
        invitation.email,
        f"{current_user.name} invited you to {g.workspace.name} on Multipost",
        "invitation",
        inviter=current_user,
        workspace=g.workspace,
        role=invitation.role,
        expires_at=invitation.expires_at,
        link=mail.link("invitations.accept", token=token),
    )
    audit.note(f"Invited {invitation.email} as {invitation.role.label}")
    db.session.commit()
    flash(f"Invitation sent to {invitation.email}.", "success")
    return redirect(url_for("workspace.team.index"))


@bp.post("/invitations/<int:invitation_id>/revoke")
@require_role(*TEAM_MANAGERS)
def revoke(invitation_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    invitation = tenant_service.revoke_invitation(db.session(), invitation_id)
    if invitation is None:
        abort(404)
    audit.note(f"Withdrew the invitation for {invitation.email}")
    db.session.commit()
    flash(f"The invitation for {invitation.email} is withdrawn; its link no longer works.", "info")
    return redirect(url_for("workspace.team.index"))


@bp.post("/members/<int:membership_id>/role")
@require_role(*TEAM_MANAGERS)
def change_role(membership_id: int) -> Any:
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("workspace.team.index"))
    before = db.session.get(Membership, membership_id)
    old_role = before.role.label if before is not None else ""
    try:
        _check_seat_for_role_change(membership_id, Role(form.role.data))
        membership = tenant_service.change_role(db.session(), membership_id, Role(form.role.data), current_user)
    except (MembershipError, entitlements.LimitReached) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.team.index"))
    if membership is None:
        abort(404)
    audit.note(f"{membership.user.name}: {old_role} → {membership.role.label}")
    db.session.commit()
    flash(f"{membership.user.name} is now {membership.role.label}.", "success")
    return redirect(url_for("workspace.team.index"))


def _check_seat_for_role_change(membership_id: int, role: Role) -> None:
    """A reviewer or viewer made owner, admin or editor takes a seat: it must fit the plan."""
    membership = db.session.get(Membership, membership_id)
    if membership is not None and entitlements.takes_seat(role) and not entitlements.takes_seat(membership.role):
        entitlements.require(db.session(), g.workspace.tenant_id, Action.ADD_SEAT)


@bp.route("/members/<int:membership_id>/remove", methods=["GET", "POST"])
def remove(membership_id: int) -> Any:
    """GET asks for confirmation; POST removes. Anyone may leave; managers may remove others."""
    session = db.session()
    membership = session.get(Membership, membership_id)
    if membership is None:
        abort(404)
    leaving = membership.user_id == current_user.id
    if not leaving and g.workspace.role not in TEAM_MANAGERS:
        abort(403)
    if not ConfirmForm().validate_on_submit():
        return render_template(
            "team/remove.html", membership=membership, leaving=leaving, form=ConfirmForm(formdata=None)
        )
    name = membership.user.name
    audit.note(f"{name} left" if leaving else f"Removed {name} ({membership.role.label})")
    try:
        tenant_service.remove_member(session, membership_id, current_user)
    except MembershipError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.team.index"))
    session.commit()
    if leaving:
        flash(f"You left {g.workspace.name}.", "info")
        return redirect(url_for("auth.index"))
    flash(f"{name} no longer has access to this workspace.", "info")
    return redirect(url_for("workspace.team.index"))
