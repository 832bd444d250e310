"""The media library: upload, list, alt text, and the files themselves (only to members of the workspace)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from saas import db
from saas.extensions import redis_client
from saas.media import imports, links, service
from saas.media.models import MediaItem
from saas.media.service import MediaError
from saas.media.storage import storage
from saas.security import require_role
from saas.web.forms import ConfirmForm
from tenants import tenant_session
from tenants.models import Role

bp = Blueprint("media", __name__, url_prefix="/media")

EDITORS = (Role.OWNER, Role.ADMIN, Role.EDITOR)


@bp.get("")
def index() -> Any:
    session = db.session()
    recent_imports = imports.recent(session)
    response = make_response(
        render_template(
            "media/index.html",
            items=service.library(session),
            imports=recent_imports,
            can_edit=g.workspace.role in EDITORS,
            confirm=ConfirmForm(formdata=None),
        )
    )
    if any(row.pending for row in recent_imports):
        response.headers["Refresh"] = "5"  # until the worker is done; no script needed
    return response


@bp.post("/from-url")
@require_role(*EDITORS)
def from_url() -> Any:
    """Record the wish and hand it to a worker: nothing is fetched in the web request."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        row = imports.request(
            db.session(),
            url=request.form.get("url", ""),
            alt=request.form.get("alt", ""),
            requested_by=current_user.id,
        )
    except MediaError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.media.index"))
    db.session.commit()
    try:
        imports.enqueue(redis_client(), g.workspace.tenant_id, row.id)
    except RedisError:
        imports.give_up(db.session(), row.id, "We could not start fetching it. Try again in a minute.")
        db.session.commit()
        flash("We could not start fetching it. Try again in a minute.", "error")
        return redirect(url_for("workspace.media.index"))
    flash("Fetching it now. It appears in the library when it arrives; this page refreshes until then.", "success")
    return redirect(url_for("workspace.media.index"))


@bp.post("")
@require_role(*EDITORS)
def upload() -> Any:
    # Refused before the body is read: an upload never has to fit in memory to be turned away.
    if (request.content_length or 0) > service.MAX_UPLOAD_BYTES:
        flash(f"Upload at most {service.MAX_UPLOAD_BYTES // 1_000_000} MB at a time.", "error")
        return redirect(url_for("workspace.media.index"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        flash("Choose one or more files to upload.", "error")
        return redirect(url_for("workspace.media.index"))
    alt = request.form.get("alt", "")
    uploaded, refused = [], []
    for upload_file in files:
        try:
            item = service.upload(
                db.session(),
                filename=upload_file.filename or "upload",
                data=upload_file.read(),
                alt=alt,
                uploaded_by=current_user.id,
            )
        except MediaError as exc:
            refused.append(str(exc))
        else:
            uploaded.append(item.filename)
    db.session.commit()
    if uploaded:
        flash(f"Uploaded {', '.join(uploaded)}.", "success")
    for message in refused:
        flash(message, "error")
    return redirect(url_for("workspace.media.index"))


# Library files at signed addresses, without a login: networks that download media themselves use them.
public = Blueprint("public_media", __name__)


@public.get("/m/<token>")
def public_file(token: str) -> Any:
    found = links.read(token)
    if found is None:
        abort(404)
    tenant_id, media_id = found
    with tenant_session(tenant_id) as session:
        item = service.get(session, media_id)
        if item is None:
            abort(404)
        return _send(item)


@bp.get("/<int:media_id>/file")
def file(media_id: int) -> Any:
    item = service.get(db.session(), media_id)
    if item is None:
        abort(404)
    return _send(item)


# A library file opened on its own is a document with no rights: even a file a browser mistook for a page
# could run nothing and reach nothing.
FILE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"


def _send(item: MediaItem) -> Any:
    response = send_file(storage().source(item.storage_key), mimetype=item.mime_type, max_age=3600)
    response.headers["Content-Security-Policy"] = FILE_POLICY
    return response


@bp.post("/<int:media_id>/alt")
@require_role(*EDITORS)
def alt(media_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        item = service.set_alt(db.session(), media_id, request.form.get("alt", ""))
    except MediaError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("workspace.media.index"))
    if item is None:
        abort(404)
    db.session.commit()
    flash(f"Alt text saved for {item.filename}. Posts scheduled before keep the text they had.", "success")
    return redirect(url_for("workspace.media.index"))
