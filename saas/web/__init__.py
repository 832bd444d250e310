"""Blueprints: parse input, call a service, render."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_request_context, render_template
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from saas import db, timezones
from saas.notifications import service as notification_service
from saas.ratelimit import TooManyAttempts
from tenants import service as tenant_service


def init_app(app: Flask) -> None:
    from saas.api import views as api_views
    from saas.sandbox import views as sandbox_views
    from saas.web import (
        account,
        agency,
        auth,
        billing,
        channels,
        connect_links,
        feeds,
        health,
        invitations,
        media,
        reauth,
        review,
        workspace,
    )

    api_views.init_app(app)
    app.jinja_env.add_extension("jinja2.ext.do")
    for module in (auth, account, reauth, invitations, review, workspace, health, sandbox_views, feeds):
        app.register_blueprint(module.bp)
    app.register_blueprint(channels.callbacks)
    app.register_blueprint(media.public)
    app.register_blueprint(agency.invitations_bp)
    app.register_blueprint(connect_links.bp)
    billing.init_app(app)

    @app.template_filter("localtime")
    def localtime(moment: Any) -> str:
        """A UTC moment in the reader's own time zone, with the zone named."""
        # Outside a request (mail from a worker) there is no reader: UTC, and the zone is named.
        zone = current_user.timezone if has_request_context() and current_user.is_authenticated else "UTC"
        return timezones.format_local(moment, zone)

    @app.context_processor
    def layout_context() -> dict[str, Any]:
        if not has_request_context() or not current_user.is_authenticated:
            return {}
        workspace = getattr(g, "workspace", None)
        return {
            "my_workspaces": tenant_service.workspaces_of(current_user.id),
            "current_workspace": workspace,
            "unread_notifications": notification_service.unread_count(db.session(), current_user.id)
            if workspace
            else 0,
        }

    @app.errorhandler(404)
    def not_found(e: Any) -> Any:
        if api_views.is_api_request():
            return api_views.problem_for(e)
        return render_template("errors/404.html"), 404

    @app.errorhandler(403)
    def forbidden(e: Any) -> Any:
        if api_views.is_api_request():
            return api_views.problem_for(e)
        return render_template("errors/403.html"), 403

    @app.errorhandler(CSRFError)
    def csrf_failed(_e: CSRFError) -> Any:
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(TooManyAttempts)
    def too_many(e: TooManyAttempts) -> Any:
        return render_template("errors/429.html", message=str(e)), 429, {"Retry-After": str(e.retry_after)}

    @app.errorhandler(500)
    def server_error(e: Any) -> Any:
        if api_views.is_api_request():
            return api_views.problem_for(e)
        return render_template("errors/500.html"), 500
