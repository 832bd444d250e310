"""CSV import (preview, then confirm) and CSV export of a calendar window."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from saas import db
from saas.posts import calendar, csv_export, csv_import
from saas.posts.csv_import import CsvError
from saas.security import require_role
from saas.web import calendar as calendar_views
from saas.web.forms import ConfirmForm
from tenants.models import Role

bp = Blueprint("bulk", __name__, url_prefix="/import")

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)


@bp.before_request
def _managed_clients_import_through_their_agency() -> None:
    if request.method == "POST" and g.workspace.publishes_through_agency:
        abort(403)  # importing schedules posts: in a managed client only the agency does that


@bp.get("")
@require_role(*EDITORS)
def index() -> Any:
    return render_template("bulk/import.html", columns=csv_import.REQUIRED + csv_import.OPTIONAL)


@bp.post("")
@require_role(*EDITORS)
def preview() -> Any:
    """Check the uploaded file and show every row's problems; nothing is saved."""
    if (request.content_length or 0) > csv_import.MAX_BYTES + 100_000:
        return _refused(f"The file is larger than {csv_import.MAX_BYTES // 2**20} MB. Split it into smaller files.")
    if not ConfirmForm().validate_on_submit():
        abort(400)
    upload = request.files.get("file")
    data = upload.read() if upload else b""
    if not data:
        return _refused("Choose a CSV file to upload.")
    try:
        rows = csv_import.read(data)
    except CsvError as exc:
        return _refused(str(exc))
    checked = csv_import.check(db.session(), rows, g.workspace.timezone, current_user.id)
    db.session.rollback()
    return render_template(
        "bulk/preview.html",
        rows=checked,
        good=sum(1 for r in checked if r.ok),
        bad=sum(1 for r in checked if not r.ok),
        payload=base64.b64encode(data).decode(),
        filename=upload.filename if upload else "",
        zone=g.workspace.timezone,
    )


@bp.post("/confirm")
@require_role(*EDITORS)
def confirm() -> Any:
    """Import the rows without problems (checked again, as time has passed since the preview)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        data = base64.b64decode(request.form.get("payload", ""), validate=True)
        rows = csv_import.read(data)
    except (binascii.Error, CsvError):
        return _refused("The preview expired or was changed. Upload the file again.")
    created, skipped = csv_import.import_rows(db.session(), rows, g.workspace.timezone, current_user.id)
    db.session.commit()
    message = f"Imported {len(created)} post{'s' if len(created) != 1 else ''}."
    if skipped:
        message += f" Skipped {skipped} row{'s' if skipped != 1 else ''} with problems."
    flash(message, "success")
    return redirect(url_for("workspace.calendar", view="list"))


def _refused(message: str) -> Any:
    columns = csv_import.REQUIRED + csv_import.OPTIONAL
    return render_template("bulk/import.html", error=message, columns=columns), 422


def export() -> Any:
    """The visible window (same view, dates and filters as the calendar) as a CSV file."""
    filters = calendar_views.filters_from_request()
    zone = calendar_views.zone_for(filters)
    view = request.args.get("view", "list")
    _anchor, start, end = calendar_views.window_of(view if view in calendar_views.VIEWS else "list", zone)
    entries = calendar.window(db.session(), start, end, zone, filters, full_text=True)
    filename = f"{g.workspace.slug}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        csv_export.to_csv(entries, zone),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
