"""The workspace's channels: what is connected, its health, and the Sandbox connect."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from saas import db
from saas.channels import service
from saas.channels.models import Channel
from saas.sandbox import connect as sandbox_connect
from saas.security import TEAM_MANAGERS, require_role
from saas.web.forms import ConfirmForm

bp = Blueprint("channels", __name__, url_prefix="/channels")


@bp.get("")
def index() -> Any:
    return render_template(
        "channels/index.html",
        channels=service.channels(db.session()),
        confirm=ConfirmForm(formdata=None),
        can_manage=g.workspace.role in TEAM_MANAGERS,
    )


@bp.post("/sandbox")
@require_role(*TEAM_MANAGERS)
def add_sandbox() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    channel = sandbox_connect.connect_new_account(db.session(), g.workspace.name)
    db.session.commit()
    flash(f"Connected the Sandbox account @{channel.handle}.", "success")
    return redirect(url_for("workspace.channels.index"))


@bp.post("/<int:channel_id>/reconnect")
@require_role(*TEAM_MANAGERS)
def reconnect(channel_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        abort(404)
    if channel.network != "sandbox":
        flash(f"Reconnecting {channel.network} channels arrives with that network's connect flow.", "error")
        return redirect(url_for("workspace.channels.index"))
    sandbox_connect.reconnect(db.session(), channel)
    db.session.commit()
    flash(f"@{channel.handle} is connected again. Blocked posts can now be tried again.", "success")
    return redirect(url_for("workspace.channels.index"))
