"""The signed-in person's notifications in this workspace."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from saas import db
from saas.notifications import service
from saas.web.forms import ConfirmForm

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
def index() -> Any:
    return render_template(
        "notifications/index.html",
        notifications=service.recent(db.session(), current_user.id),
        confirm=ConfirmForm(formdata=None),
    )


@bp.post("/read")
def mark_read() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    service.mark_all_read(db.session(), current_user.id)
    db.session.commit()
    flash("All notifications marked as read.", "info")
    return redirect(url_for("workspace.notifications.index"))
