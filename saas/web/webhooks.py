"""Workspace settings → Webhooks: endpoints, their secret, test events and the delivery log (owners and admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, url_for
from flask_login import current_user

from saas import db
from saas.security import TEAM_MANAGERS
from saas.web.forms import ConfirmForm, WebhookEndpointForm
from saas.webhooks import service
from saas.webhooks.events import EVENT_TYPES
from saas.webhooks.service import EndpointInput, WebhookError

bp = Blueprint("webhooks", __name__, url_prefix="/settings/webhooks")


@bp.before_request
def _managers_only() -> None:
    if g.workspace.role not in TEAM_MANAGERS:
        abort(403)


def _form(**kwargs: Any) -> WebhookEndpointForm:
    form = WebhookEndpointForm(**kwargs)
    form.events.choices = list(EVENT_TYPES)
    return form


def _input(form: WebhookEndpointForm) -> EndpointInput:
    return EndpointInput(form.url.data or "", tuple(form.events.data or ()), form.description.data or "")


def _field_error(form: WebhookEndpointForm, error: WebhookError) -> None:
    getattr(form, error.field, form.url).errors = [error.message]


def _checked() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


def _endpoint(endpoint_id: int) -> Any:
    try:
        return service.endpoint_or_404(db.session(), endpoint_id)
    except LookupError:
        abort(404)


def _secret_page(endpoint: Any, secret: str, title: str) -> Any:
    response = make_response(render_template("webhooks/secret.html", endpoint=endpoint, secret=secret, title=title))
    response.headers["Cache-Control"] = "no-store"  # a secret must not linger in caches or history
    return response


@bp.get("")
def index() -> Any:
    session = db.session()
    return render_template(
        "webhooks/index.html",
        endpoints=service.endpoints(session),
        last=service.last_deliveries(session),
        event_types=EVENT_TYPES,
    )


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    form = _form()
    if form.validate_on_submit():
        try:
            endpoint, secret = service.create(db.session(), _input(form), current_user.id)
        except WebhookError as exc:
            db.session.rollback()
            _field_error(form, exc)
        else:
            db.session.commit()
            return _secret_page(endpoint, secret, "Endpoint added")
    status = 422 if form.is_submitted() else 200
    return render_template("webhooks/new.html", form=form, event_types=EVENT_TYPES), status


@bp.get("/<int:endpoint_id>")
def detail(endpoint_id: int) -> Any:
    endpoint = _endpoint(endpoint_id)
    form = _form(obj=endpoint)
    return _detail(endpoint, form)


def _detail(endpoint: Any, form: WebhookEndpointForm, status: int = 200) -> Any:
    return render_template(
        "webhooks/detail.html",
        endpoint=endpoint,
        form=form,
        event_types=EVENT_TYPES,
        deliveries=service.deliveries(db.session(), endpoint.id),
    ), status


@bp.post("/<int:endpoint_id>")
def update(endpoint_id: int) -> Any:
    endpoint = _endpoint(endpoint_id)
    form = _form()
    if not form.validate_on_submit():
        abort(400)
    try:
        service.update(db.session(), endpoint.id, _input(form))
    except WebhookError as exc:
        db.session.rollback()
        _field_error(form, exc)
        return _detail(_endpoint(endpoint_id), form, 422)
    db.session.commit()
    flash("Endpoint saved.", "success")
    return redirect(url_for("workspace.webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/enable")
def enable(endpoint_id: int) -> Any:
    return _switch(endpoint_id, True)


@bp.post("/<int:endpoint_id>/disable")
def disable(endpoint_id: int) -> Any:
    return _switch(endpoint_id, False)


def _switch(endpoint_id: int, enabled: bool) -> Any:
    _checked()
    endpoint = _endpoint(endpoint_id)
    service.set_enabled(db.session(), endpoint.id, enabled)
    db.session.commit()
    flash("Endpoint switched on: new events are sent to it again." if enabled else
          "Endpoint switched off: nothing is sent to it until you switch it on.", "success")  # fmt: skip
    return redirect(url_for("workspace.webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/delete")
def delete(endpoint_id: int) -> Any:
    _checked()
    endpoint = _endpoint(endpoint_id)
    url = endpoint.url
    service.delete(db.session(), endpoint.id)
    db.session.commit()
    flash(f"Deleted the endpoint {url} and its delivery log.", "success")
    return redirect(url_for("workspace.webhooks.index"))


@bp.post("/<int:endpoint_id>/test")
def send_test(endpoint_id: int) -> Any:
    _checked()
    endpoint = _endpoint(endpoint_id)
    try:
        service.send_test(db.session(), endpoint.id)
    except WebhookError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("A test event is on its way; its delivery appears in the log below within seconds.", "success")
    return redirect(url_for("workspace.webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/secret")
def reveal_secret(endpoint_id: int) -> Any:
    _checked()
    endpoint = _endpoint(endpoint_id)
    g.audit_changed = True  # nothing changes, but who looked at a signing secret belongs in the audit log
    return _secret_page(endpoint, service.secret_of(endpoint), "Signing secret")


@bp.post("/<int:endpoint_id>/secret/rotate")
def rotate_secret(endpoint_id: int) -> Any:
    _checked()
    endpoint, secret = service.rotate_secret(db.session(), _endpoint(endpoint_id).id)
    db.session.commit()
    return _secret_page(endpoint, secret, "New signing secret")


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/replay")
def replay(endpoint_id: int, delivery_id: int) -> Any:
    _checked()
    endpoint = _endpoint(endpoint_id)
    try:
        service.replay(db.session(), [delivery_id], endpoint_id=endpoint.id)
    except LookupError:
        abort(404)
    except WebhookError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("The event is being sent again, with the same webhook-id.", "success")
    return redirect(url_for("workspace.webhooks.detail", endpoint_id=endpoint.id))
